// keel::cache::Cache: the interface every keel cache implements (LruCache, TinyLfuCache,
// keel::redis::RedisCache, the two-tier cache), so that CacheAside and the tiers take any of them.
//
// Thread safety: every implementation is safe to call from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::cache {

// Counters since construction (clear() keeps them). Exact under concurrency.
struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;  // expired entries included
  std::uint64_t puts = 0;
  std::uint64_t evictions = 0;    // live entries dropped for room (or refused admission)
  std::uint64_t expirations = 0;  // entries dropped because their ttl had passed
  // hits / (hits + misses); 0 when there were no lookups.
  double hit_rate() const noexcept {
    const std::uint64_t lookups = hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
};

struct CacheOptions {
  // ttl of a put without one. Default: none (entries do not expire). REQUIRES: > 0 when set.
  std::optional<Duration> default_ttl = std::nullopt;
  // Independent shards, each with its own lock and its share of the capacity. 0 picks a number
  // from the hardware, keeping at least 64 entries per shard (so small caches have one shard and
  // exact policy). Default: 0.
  std::size_t shards = 0;
};

template <class K, class V>
class Cache {
 public:
  virtual ~Cache() = default;

  // The value, or nullopt on a miss (an expired entry is a miss, and is dropped).
  virtual std::optional<V> get(const K& key) = 0;
  // Stores `value`, replacing any entry for `key`. `ttl` (> 0, else std::invalid_argument)
  // overrides the default ttl.
  virtual void put(const K& key, V value, std::optional<Duration> ttl = std::nullopt) = 0;
  // Drops the entry; returns whether there was one.
  virtual bool erase(const K& key) = 0;
  virtual std::size_t size() const = 0;
  virtual std::size_t capacity() const = 0;
  virtual void clear() = 0;
  virtual CacheStats stats() const = 0;
};

// Exposes a cache's stats() until the Subscription ends (the cache must outlive it):
//   keel_cache_requests_total{cache="<name>",result="hit"|"miss"}, keel_cache_puts_total,
//   keel_cache_evictions_total and keel_cache_expirations_total{cache}.
// (Hit ratio in PromQL: rate(...{result="hit"}[5m]) / rate(keel_cache_requests_total[5m]).)
template <class K, class V>
Subscription register_metrics(MetricsRegistry& registry, std::string_view name,
                              const Cache<K, V>& cache) {
  const std::string label(name);
  std::vector<Subscription> parts;
  const auto add = [&](std::string_view metric, std::string_view help, Labels labels,
                       std::uint64_t CacheStats::*field) {
    parts.push_back(registry.counter_fn(metric, help, labels, [&cache, field] {
      return static_cast<double>(cache.stats().*field);
    }));
  };
  add("keel_cache_requests_total", "Cache lookups by result", {{"cache", label}, {"result", "hit"}},
      &CacheStats::hits);
  add("keel_cache_requests_total", "Cache lookups by result",
      {{"cache", label}, {"result", "miss"}}, &CacheStats::misses);
  add("keel_cache_puts_total", "Entries stored", {{"cache", label}}, &CacheStats::puts);
  add("keel_cache_evictions_total", "Live entries dropped for room", {{"cache", label}},
      &CacheStats::evictions);
  add("keel_cache_expirations_total", "Entries dropped after their ttl", {{"cache", label}},
      &CacheStats::expirations);
  return Subscription::all(std::move(parts));
}

}  // namespace keel::cache
