// The machinery shared by LruCache and TinyLfuCache (not public): shards with their own lock,
// hash map, expiry index, eviction policy and stats. Policy is LruPolicy or TinyLfuPolicy: it
// orders a shard's entries (intrusive hooks) and names the entry to evict.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keel/cache/cache.h"
#include "keel/core/clock.h"

namespace keel::cache::internal {

// Throws std::invalid_argument naming the value.
void require_capacity(std::size_t capacity);
void require_ttl(const std::optional<Duration>& ttl, const char* name);
// The number of shards for a capacity and the requested count (0 = auto).
std::size_t shard_count(std::size_t capacity, std::size_t requested);

// A 64-bit mix (the murmur3 finalizer) so that identity hashes (std::hash<int>) spread.
inline std::uint64_t mix(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

template <class K, class V, class Hash, class Eq, class Policy>
class ShardedCache : public Cache<K, V> {
 public:
  ShardedCache(std::size_t capacity, CacheOptions options, const Clock& clock)
      : capacity_(capacity), options_(std::move(options)), clock_(clock) {
    require_capacity(capacity);
    require_ttl(options_.default_ttl, "default_ttl");
    const std::size_t n = internal::shard_count(capacity, options_.shards);
    shards_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      shards_.push_back(std::make_unique<Shard>(capacity / n + (i < capacity % n ? 1 : 0)));
    }
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(n));
  }

  std::optional<V> get(const K& key) override {
    const std::uint64_t h = hash(key);
    Shard& shard = shard_for(h);
    std::lock_guard lock(shard.mutex);
    const auto it = shard.entries.find(key);
    if (it == shard.entries.end()) {
      ++shard.stats.misses;
      shard.policy.record_miss(h);
      return std::nullopt;
    }
    Entry& entry = it->second;
    if (entry.expires <= clock_.now()) {
      ++shard.stats.misses;
      ++shard.stats.expirations;
      shard.remove(it);
      shard.policy.record_miss(h);
      return std::nullopt;
    }
    ++shard.stats.hits;
    shard.policy.record_hit(&entry);
    return entry.value;
  }

  void put(const K& key, V value, std::optional<Duration> ttl = std::nullopt) override {
    require_ttl(ttl, "ttl");
    const std::optional<Duration> effective = ttl ? ttl : options_.default_ttl;
    const TimePoint now = clock_.now();
    const TimePoint expires = effective ? now + *effective : TimePoint::max();
    const std::uint64_t h = hash(key);
    Shard& shard = shard_for(h);
    std::lock_guard lock(shard.mutex);
    ++shard.stats.puts;
    if (auto it = shard.entries.find(key); it != shard.entries.end()) {
      it->second.value = std::move(value);
      shard.set_expiry(it->second, expires);
      shard.policy.update(&it->second);
      return;
    }
    // Expired entries are reclaimed before a live one is evicted.
    if (shard.entries.size() >= shard.capacity) shard.reclaim_expired(now);
    auto [it, inserted] = shard.entries.try_emplace(key, std::move(value));
    Entry& entry = it->second;
    entry.key = &it->first;
    shard.set_expiry(entry, expires);
    if (auto* victim = shard.policy.insert(&entry, h)) {
      ++shard.stats.evictions;
      Entry* evicted = static_cast<Entry*>(victim);
      shard.remove(shard.entries.find(*evicted->key));
    }
  }

  bool erase(const K& key) override {
    Shard& shard = shard_for(hash(key));
    std::lock_guard lock(shard.mutex);
    const auto it = shard.entries.find(key);
    if (it == shard.entries.end()) return false;
    shard.remove(it);
    return true;
  }

  // Entries held, including expired ones not reclaimed yet.
  std::size_t size() const override {
    std::size_t total = 0;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      total += shard->entries.size();
    }
    return total;
  }

  std::size_t capacity() const override { return capacity_; }

  void clear() override {
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      shard->policy.clear();
      shard->expiries.clear();
      shard->entries.clear();
    }
  }

  CacheStats stats() const override {
    CacheStats total;
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      total.hits += shard->stats.hits;
      total.misses += shard->stats.misses;
      total.puts += shard->stats.puts;
      total.evictions += shard->stats.evictions;
      total.expirations += shard->stats.expirations;
    }
    return total;
  }

  std::size_t shards() const noexcept { return shards_.size(); }

 protected:
  // Runs `f(policy)` for each shard's policy under its lock (for tests and introspection).
  template <class F>
  void for_each_policy(F f) const {
    for (const auto& shard : shards_) {
      std::lock_guard lock(shard->mutex);
      f(shard->policy);
    }
  }

 private:
  struct Entry : Policy::Node {
    explicit Entry(V v) : value(std::move(v)) {}
    V value;
    TimePoint expires = TimePoint::max();
    typename std::multimap<TimePoint, Entry*>::iterator expiry{};  // valid if expires != max
    const K* key = nullptr;
  };
  using Map = std::unordered_map<K, Entry, Hash, Eq>;

  struct Shard {
    explicit Shard(std::size_t cap) : policy(cap), capacity(cap) {}
    mutable std::mutex mutex;
    Map entries;                                // guarded by mutex
    std::multimap<TimePoint, Entry*> expiries;  // entries with a ttl, soonest first
    Policy policy;
    std::size_t capacity;
    CacheStats stats;

    void set_expiry(Entry& entry, TimePoint expires) {
      if (entry.expires != TimePoint::max()) expiries.erase(entry.expiry);
      entry.expires = expires;
      if (expires != TimePoint::max()) entry.expiry = expiries.emplace(expires, &entry);
    }
    void remove(typename Map::iterator it) {
      Entry& entry = it->second;
      policy.remove(&entry);
      if (entry.expires != TimePoint::max()) expiries.erase(entry.expiry);
      entries.erase(it);
    }
    void reclaim_expired(TimePoint now) {
      while (!expiries.empty() && expiries.begin()->first <= now) {
        Entry* entry = expiries.begin()->second;
        ++stats.expirations;
        remove(entries.find(*entry->key));
      }
    }
  };

  std::uint64_t hash(const K& key) const { return mix(static_cast<std::uint64_t>(Hash{}(key))); }
  Shard& shard_for(std::uint64_t h) const {
    return shards_.size() == 1 ? *shards_.front() : *shards_[h >> shift_];
  }

  const std::size_t capacity_;
  const CacheOptions options_;
  const Clock& clock_;
  std::vector<std::unique_ptr<Shard>> shards_;
  unsigned shift_ = 64;
};

}  // namespace keel::cache::internal
