// keel/ratelimit micro-benchmarks: the cost of one decision per algorithm, on one thread and
// with two threads on one limiter, and a keyed limiter holding 1,000,000 keys.
// Run: build/release/bench/keel_ratelimit_benchmark  (figures: docs/ratelimit.md)
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <malloc.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "keel/ratelimit.h"

namespace keel::ratelimit {
namespace {

using std::chrono::seconds;

// Generous limits so that most decisions are admissions (the path that writes state). The real
// steady clock is read on every decision, as in production.
Limit limit_for(int algorithm) {
  switch (static_cast<Algorithm>(algorithm)) {
    case Algorithm::token_bucket:
      return Limit::token_bucket(1e8, 1'000'000);
    case Algorithm::gcra:
      return Limit::gcra(1e8, 1'000'000);
    case Algorithm::leaky_bucket:
      return Limit::leaky_bucket(1e8, 1'000'000);
    case Algorithm::fixed_window:
      return Limit::fixed_window(1'000'000'000, seconds(1));
    case Algorithm::sliding_window_log:
      return Limit::sliding_window_log(1'000'000, seconds(1));
    case Algorithm::sliding_window_counter:
      return Limit::sliding_window_counter(1'000'000'000, seconds(1));
  }
  return {};
}

void BM_Decision(benchmark::State& state) {
  static std::unique_ptr<RateLimiter> limiter;
  if (state.thread_index() == 0)
    limiter = make_limiter(limit_for(static_cast<int>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(limiter->try_acquire());
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(to_string(static_cast<Algorithm>(state.range(0)))));
}
BENCHMARK(BM_Decision)->DenseRange(0, 5)->Threads(1)->Threads(2)->UseRealTime();

// One limiter per key, requests for random keys among range(1) keys (1,000,000: the issue's
// figure, far larger than the caches; 10,000: fits in them).
std::vector<std::string> key_names(int count) {
  std::vector<std::string> keys;
  keys.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) keys.push_back(fmt::format("client-{:07}", i));
  return keys;
}

void BM_Keyed(benchmark::State& state) {
  static std::vector<std::string> keys;
  static std::unique_ptr<KeyedRateLimiter> limiter;
  static double bytes_per_key = 0;
  const auto algorithm = static_cast<Algorithm>(state.range(0));
  const int key_count = static_cast<int>(state.range(1));
  if (state.thread_index() == 0) {
    limiter.reset();
    keys = key_names(key_count);
    const std::size_t before = mallinfo2().uordblks;
    limiter = std::make_unique<KeyedRateLimiter>(
        algorithm == Algorithm::gcra ? Limit::gcra(10, 20)
                                     : Limit::sliding_window_counter(20, seconds(1)),
        KeyedOptions{.max_keys = 2 * static_cast<std::size_t>(key_count)});
    for (const auto& key : keys) limiter->allow(key);
    // Heap bytes held per key: map node, key, limiter (the key strings themselves are SSO).
    bytes_per_key = static_cast<double>(mallinfo2().uordblks - before) / key_count;
  }
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()));
  std::uniform_int_distribution<int> pick(0, key_count - 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->try_acquire(keys[static_cast<std::size_t>(pick(rng))]));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_key"] =
      benchmark::Counter(bytes_per_key, benchmark::Counter::kAvgThreads);
  state.SetLabel(fmt::format("{} keys, {}", key_count, to_string(algorithm)));
}
BENCHMARK(BM_Keyed)
    ->Args({static_cast<int>(Algorithm::gcra), 1'000'000})
    ->Args({static_cast<int>(Algorithm::sliding_window_counter), 1'000'000})
    ->Args({static_cast<int>(Algorithm::gcra), 10'000})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// What the limiters cost in memory, reported once.
void BM_Sizes(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(state.iterations());
  state.counters["TokenBucket"] = sizeof(TokenBucket);
  state.counters["Gcra"] = sizeof(Gcra);
  state.counters["LeakyBucket"] = sizeof(LeakyBucket);
  state.counters["FixedWindow"] = sizeof(FixedWindow);
  state.counters["SlidingWindowLog"] = sizeof(SlidingWindowLog);
  state.counters["SlidingWindowCounter"] = sizeof(SlidingWindowCounter);
}
BENCHMARK(BM_Sizes)->Iterations(1);

}  // namespace
}  // namespace keel::ratelimit

BENCHMARK_MAIN();
