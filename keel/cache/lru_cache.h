// keel::cache::LruCache: a concurrent, sharded LRU cache with per-entry TTL and exact stats.
//
// With one shard (CacheOptions::shards = 1, or any cache below 128 entries) it is an exact LRU:
// get and put both make an entry the most recent, and inserting into a full cache evicts the
// least recent. With more shards, keys are spread over shards by hash and LRU holds per shard
// (each shard evicts its own least recent entry), which is how every concurrent cache scales.
// Expired entries are misses (counted as misses and expirations) and are reclaimed before a
// live entry is evicted.
//
// Thread safety: all members are safe to call from any number of threads; operations on
// different shards never share a lock. Complexity: O(1) expected per get/put; O(log n) more for a
// put with a ttl.
#pragma once

#include <cstddef>
#include <functional>

#include "keel/cache/cache.h"
#include "keel/cache/internal/lru_policy.h"
#include "keel/cache/internal/sharded_cache.h"
#include "keel/core/clock.h"

namespace keel::cache {

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class LruCache final : public internal::ShardedCache<K, V, Hash, Eq, internal::LruPolicy> {
 public:
  // Throws std::invalid_argument for capacity 0 or a default ttl <= 0.
  explicit LruCache(std::size_t capacity, CacheOptions options = {},
                    const Clock& clock = default_clock())
      : internal::ShardedCache<K, V, Hash, Eq, internal::LruPolicy>(capacity, std::move(options),
                                                                    clock) {}
};

}  // namespace keel::cache
