// keel/cache benchmarks: get/put on a Zipf(0.99) workload over 1,000,000 keys with capacity
// 100,000, for LruCache and TinyLfuCache, on 1 and 2 threads; hit ratio and memory per entry
// alongside. Run: build/release/bench/keel_cache_benchmark  (figures: docs/cache.md)
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "keel/cache.h"

namespace keel::cache {
namespace {

constexpr std::uint64_t kKeys = 1'000'000;
constexpr std::size_t kCapacity = 100'000;

// A Zipf(s) sampler over [0, n): rank r is drawn with probability proportional to 1/(r+1)^s, by
// inverting the cumulative distribution (precomputed once; 8 MB).
class Zipf {
 public:
  Zipf(std::uint64_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  template <class Rng>
  std::uint64_t operator()(Rng& rng) const {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return static_cast<std::uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

// Pre-drawn keys, shuffled ranks so that popular keys are not neighbours in the hash space.
const std::vector<std::uint64_t>& workload() {
  static const std::vector<std::uint64_t> keys = [] {
    Zipf zipf(kKeys, 0.99);
    std::mt19937_64 rng(2026);
    std::vector<std::uint64_t> permutation(kKeys);
    for (std::uint64_t i = 0; i < kKeys; ++i) permutation[i] = i;
    std::shuffle(permutation.begin(), permutation.end(), rng);
    std::vector<std::uint64_t> out(1 << 22);
    for (auto& k : out) k = permutation[zipf(rng)];
    return out;
  }();
  return keys;
}

template <class C>
void BM_ZipfGetPut(benchmark::State& state) {
  static std::unique_ptr<C> cache;
  static double bytes_per_entry = 0;
  const auto& keys = workload();
  if (state.thread_index() == 0) {
    cache.reset();
    const std::size_t before = mallinfo2().uordblks;
    cache = std::make_unique<C>(kCapacity);
    for (std::uint64_t k = 0; k < kCapacity; ++k) cache->put(k + kKeys, k);  // fill it
    for (std::size_t i = 0; i < keys.size() / 4; ++i) {  // warm up on the workload
      if (!cache->get(keys[i])) cache->put(keys[i], keys[i]);
    }
    // Measured after the warm-up, so that what the policy builds on gets (W-TinyLFU's shadow
    // LRU) is counted too.
    bytes_per_entry =
        static_cast<double>(mallinfo2().uordblks - before) / static_cast<double>(kCapacity);
  }
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 1'000'003;
  // Only thread 0 touches the cache outside the timed loop (the others may reach this line
  // while thread 0 is still building it).
  const CacheStats before = state.thread_index() == 0 ? cache->stats() : CacheStats{};
  for (auto _ : state) {
    const std::uint64_t key = keys[i++ & (keys.size() - 1)];
    if (!cache->get(key)) cache->put(key, key);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    const CacheStats after = cache->stats();
    const auto hits = static_cast<double>(after.hits - before.hits);
    const auto lookups = hits + static_cast<double>(after.misses - before.misses);
    state.counters["hit_ratio"] = lookups > 0 ? hits / lookups : 0;
    state.counters["bytes_per_entry"] = bytes_per_entry;
  }
}
BENCHMARK_TEMPLATE(BM_ZipfGetPut, LruCache<std::uint64_t, std::uint64_t>)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ZipfGetPut, TinyLfuCache<std::uint64_t, std::uint64_t>)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace
}  // namespace keel::cache

BENCHMARK_MAIN();
