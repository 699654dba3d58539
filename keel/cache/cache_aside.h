// keel::cache::CacheAside: the cache-aside (lazy loading) pattern over any Cache.
//
//   read:  get(key) -> cache hit? return it.
//                   -> miss: load from the source (once, however many callers miss at once),
//                      store with a ttl, return it.
//   write: the application updates the source, then calls invalidate(key) (delete, not update).
//
// Single flight: concurrent misses for one key run the loader once and share its result, or its
// exception (which is rethrown to every waiter and not cached). Optional negative caching stores
// "not found" for a short ttl; optional ttl jitter spreads the expiries of entries loaded
// together. A loader that returns nullopt means "not in the source".
//
// Thread safety: all members are safe to call from any number of threads. The loader and every
// call into the cache run without CacheAside's lock held (a remote cache may take a round trip);
// the loader runs on the thread of the first caller that missed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "keel/cache/cache.h"
#include "keel/cache/lru_cache.h"
#include "keel/core/clock.h"

namespace keel::cache {

struct CacheAsideOptions {
  // ttl of loaded entries; nullopt uses the cache's default ttl. REQUIRES: > 0 when set.
  std::optional<Duration> ttl = std::nullopt;
  // When set, "not found" is cached for this long, so that a missing key does not reach the
  // source on every request. REQUIRES: > 0 when set. Default: unset (not cached).
  std::optional<Duration> negative_ttl = std::nullopt;
  // How many "not found" answers are kept (an LRU of their own). REQUIRES: > 0. Default: 10,000.
  std::size_t negative_capacity = 10'000;
  // Each stored ttl is multiplied by a random factor in [1 - jitter, 1]: entries loaded together
  // do not all expire together (no synchronized reload). REQUIRES: in [0, 1), and ttl set when
  // > 0. Default: 0.
  double ttl_jitter = 0;
};

struct CacheAsideStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t loads = 0;          // loader calls
  std::uint64_t shared_loads = 0;   // misses that waited for another caller's load
  std::uint64_t load_errors = 0;    // loader calls that threw
  std::uint64_t negative_hits = 0;  // "not found" answered from the cache
  std::uint64_t invalidations = 0;
  std::uint64_t store_errors = 0;  // loaded values the cache threw on (returned, not cached)
};

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class CacheAside {
 public:
  using Loader = std::function<std::optional<V>(const K&)>;

  // `cache` must outlive this object; `clock` times the negative entries. Throws
  // std::invalid_argument for an empty loader or invalid options.
  CacheAside(Cache<K, V>& cache, Loader loader, CacheAsideOptions options = {},
             const Clock& clock = default_clock());

  // The value from the cache, or loaded from the source (and cached); nullopt when the source
  // has no such key. Rethrows the loader's exception.
  std::optional<V> get(const K& key);
  // Drops the cached entry (and any cached "not found"); call it after writing the source. A load
  // of this key that is running now returns its value to its callers but does not cache it: that
  // value may predate the write.
  void invalidate(const K& key);
  CacheAsideStats stats() const;

 private:
  struct Flight {
    std::condition_variable done_cv;
    bool done = false;
    bool invalidated = false;
    std::optional<V> value;
    std::exception_ptr error;
  };
  std::optional<V> wait_for(const std::shared_ptr<Flight>& flight,
                            std::unique_lock<std::mutex>& lock);
  std::optional<V> load(const K& key, const std::shared_ptr<Flight>& flight);
  void store(const K& key, Flight& flight, const std::optional<V>& value);
  void finish(const K& key, const std::shared_ptr<Flight>& flight, const std::optional<V>& value,
              std::exception_ptr error);
  std::optional<Duration> jittered_ttl();  // REQUIRES: mutex_ held

  Cache<K, V>& cache_;
  Loader loader_;
  CacheAsideOptions options_;
  std::unique_ptr<Cache<K, char>> negatives_;  // "not found" answers, when negative_ttl is set
  std::mutex mutex_;
  std::unordered_map<K, std::shared_ptr<Flight>, Hash, Eq> flights_;  // guarded by mutex_
  std::mt19937_64 rng_{std::random_device{}()};                       // guarded by mutex_
  struct Counters {
    std::atomic<std::uint64_t> hits{0}, misses{0}, loads{0}, shared_loads{0}, load_errors{0},
        negative_hits{0}, invalidations{0}, store_errors{0};
  } counters_;
};

}  // namespace keel::cache

#include "keel/cache/internal/cache_aside_impl.h"
