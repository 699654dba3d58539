// keel::cache::TinyLfuCache: a concurrent cache with the W-TinyLFU policy (Caffeine's), the same
// interface and constructor as LruCache.
//
// New entries enter a small LRU window; when they leave it, a count-min sketch of recent access
// frequencies decides whether they displace the least recent entry of the main, segmented-LRU
// region (probation + protected), so one-hit wonders and scans do not flush popular entries.
// The window's size adapts by hill climbing on the hit rate (measured against a sampled shadow
// LRU of key hashes), so the cache also keeps up with recency-heavy workloads where a fixed small
// window loses to LRU. See
// keel/cache/internal/tiny_lfu_policy.h and docs/cache.md (with measured hit ratios).
//
// With more than one shard, each shard runs its own policy and sketch. A get counts towards
// frequency whether it hits or misses; a put does not (the get before it already did).
//
// Thread safety: as LruCache.
#pragma once

#include <cstddef>
#include <functional>

#include "keel/cache/cache.h"
#include "keel/cache/internal/sharded_cache.h"
#include "keel/cache/internal/tiny_lfu_policy.h"
#include "keel/core/clock.h"

namespace keel::cache {

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class TinyLfuCache final : public internal::ShardedCache<K, V, Hash, Eq, internal::TinyLfuPolicy> {
 public:
  // Throws std::invalid_argument for capacity 0 or a default ttl <= 0.
  explicit TinyLfuCache(std::size_t capacity, CacheOptions options = {},
                        const Clock& clock = default_clock())
      : internal::ShardedCache<K, V, Hash, Eq, internal::TinyLfuPolicy>(
            capacity, std::move(options), clock) {}

  // The window's current share of the capacity, summed over shards (it adapts).
  std::size_t window_capacity() const {
    std::size_t total = 0;
    this->for_each_policy([&](const internal::TinyLfuPolicy& p) { total += p.window_capacity(); });
    return total;
  }
};

}  // namespace keel::cache
