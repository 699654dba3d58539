// CacheAside's member definitions (templates), included by keel/cache/cache_aside.h.
#pragma once

#include <fmt/format.h>

namespace keel::cache {

template <class K, class V, class Hash, class Eq>
CacheAside<K, V, Hash, Eq>::CacheAside(Cache<K, V>& cache, Loader loader, CacheAsideOptions options,
                                       const Clock& clock)
    : cache_(cache), loader_(std::move(loader)), options_(std::move(options)) {
  if (!loader_) throw std::invalid_argument("CacheAside needs a loader");
  internal::require_ttl(options_.ttl, "CacheAsideOptions.ttl");
  internal::require_ttl(options_.negative_ttl, "CacheAsideOptions.negative_ttl");
  if (!(options_.ttl_jitter >= 0 && options_.ttl_jitter < 1)) {
    throw std::invalid_argument(
        fmt::format("CacheAsideOptions.ttl_jitter must be in [0, 1), got {}", options_.ttl_jitter));
  }
  if (options_.ttl_jitter > 0 && !options_.ttl) {
    throw std::invalid_argument("CacheAsideOptions.ttl_jitter needs CacheAsideOptions.ttl");
  }
  if (options_.negative_ttl) {
    negatives_ = std::make_unique<LruCache<K, char, Hash, Eq>>(
        options_.negative_capacity, CacheOptions{.default_ttl = options_.negative_ttl}, clock);
  }
}

template <class K, class V, class Hash, class Eq>
std::optional<V> CacheAside<K, V, Hash, Eq>::get(const K& key) {
  if (auto value = cache_.get(key)) {
    counters_.hits.fetch_add(1, std::memory_order_relaxed);
    return value;
  }
  if (negatives_ && negatives_->get(key)) {
    counters_.negative_hits.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  counters_.misses.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock lock(mutex_);
  if (auto it = flights_.find(key); it != flights_.end()) {  // someone is loading it: wait
    counters_.shared_loads.fetch_add(1, std::memory_order_relaxed);
    const std::shared_ptr<Flight> flight = it->second;
    return wait_for(flight, lock);
  }
  const auto flight = std::make_shared<Flight>();
  flights_.emplace(key, flight);
  lock.unlock();
  // A load that finished between our miss and our flight has stored its value (a flight is
  // retired only after its store): look once more before loading again.
  try {
    if (auto value = cache_.get(key)) {
      finish(key, flight, value, nullptr);
      return value;
    }
    if (negatives_ && negatives_->get(key)) {
      finish(key, flight, std::nullopt, nullptr);
      return std::nullopt;
    }
  } catch (...) {  // a cache that throws must not leave the flight's waiters waiting
    finish(key, flight, std::nullopt, std::current_exception());
    throw;
  }
  return load(key, flight);
}

template <class K, class V, class Hash, class Eq>
std::optional<V> CacheAside<K, V, Hash, Eq>::wait_for(const std::shared_ptr<Flight>& flight,
                                                      std::unique_lock<std::mutex>& lock) {
  flight->done_cv.wait(lock, [&] { return flight->done; });
  if (flight->error) std::rethrow_exception(flight->error);
  return flight->value;
}

template <class K, class V, class Hash, class Eq>
std::optional<V> CacheAside<K, V, Hash, Eq>::load(const K& key,
                                                  const std::shared_ptr<Flight>& flight) {
  std::optional<V> value;
  std::exception_ptr error;
  counters_.loads.fetch_add(1, std::memory_order_relaxed);
  try {
    value = loader_(key);
  } catch (...) {
    error = std::current_exception();
    counters_.load_errors.fetch_add(1, std::memory_order_relaxed);
  }
  if (!error) {
    try {
      store(key, *flight, value);
    } catch (...) {  // the value was loaded: callers get it even if the cache could not keep it
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  finish(key, flight, value, error);
  if (error) std::rethrow_exception(error);
  return value;
}

// Stores a loaded value without holding the lock (a remote cache may take a round trip). The
// flight stays registered meanwhile, so an invalidate() either marks it before the store (and
// the value is not stored) or during it (and the value stored is erased again here).
template <class K, class V, class Hash, class Eq>
void CacheAside<K, V, Hash, Eq>::store(const K& key, Flight& flight,
                                       const std::optional<V>& value) {
  std::optional<Duration> ttl;
  {
    std::lock_guard lock(mutex_);
    if (flight.invalidated) return;
    ttl = jittered_ttl();
  }
  if (value) {
    cache_.put(key, *value, ttl);
  } else if (negatives_) {
    negatives_->put(key, 1);
  } else {
    return;
  }
  bool invalidated = false;
  {
    std::lock_guard lock(mutex_);
    invalidated = flight.invalidated;
  }
  if (invalidated) {
    cache_.erase(key);
    if (negatives_) negatives_->erase(key);
  }
}

template <class K, class V, class Hash, class Eq>
void CacheAside<K, V, Hash, Eq>::finish(const K& key, const std::shared_ptr<Flight>& flight,
                                        const std::optional<V>& value, std::exception_ptr error) {
  std::lock_guard lock(mutex_);
  flight->value = value;
  flight->error = std::move(error);
  flight->done = true;
  flights_.erase(key);
  flight->done_cv.notify_all();
}

template <class K, class V, class Hash, class Eq>
std::optional<Duration> CacheAside<K, V, Hash, Eq>::jittered_ttl() {
  if (!options_.ttl || options_.ttl_jitter == 0) return options_.ttl;
  std::uniform_real_distribution<double> factor(1.0 - options_.ttl_jitter, 1.0);
  const auto ttl =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double, Duration::period>(
          static_cast<double>(options_.ttl->count()) * factor(rng_)));
  return std::max(ttl, Duration(1));
}

template <class K, class V, class Hash, class Eq>
void CacheAside<K, V, Hash, Eq>::invalidate(const K& key) {
  counters_.invalidations.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    if (auto it = flights_.find(key); it != flights_.end()) it->second->invalidated = true;
  }
  cache_.erase(key);  // outside the lock: a remote cache may take a round trip
  if (negatives_) negatives_->erase(key);
}

template <class K, class V, class Hash, class Eq>
CacheAsideStats CacheAside<K, V, Hash, Eq>::stats() const {
  const auto read = [](const std::atomic<std::uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  return {.hits = read(counters_.hits),
          .misses = read(counters_.misses),
          .loads = read(counters_.loads),
          .shared_loads = read(counters_.shared_loads),
          .load_errors = read(counters_.load_errors),
          .negative_hits = read(counters_.negative_hits),
          .invalidations = read(counters_.invalidations),
          .store_errors = read(counters_.store_errors)};
}

}  // namespace keel::cache
