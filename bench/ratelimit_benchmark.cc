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
  if (state.thread_index() == 0) limiter = make_limiter(limit_for(static_cast<int>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(limiter->try_acquire());
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(to_string(static_cast<Algorithm>(state.range(0)))));
}
BENCHMARK(BM_Decision)->DenseRange(0, 5)->Threads(1)->Threads(2)->UseRealTime();

// One limiter per key, 1,000,000 keys, requests for random keys.
constexpr int kKeys = 1'000'000;

std::vector<std::string> key_names() {
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) keys.push_back(fmt::format("client-{:07}", i));
  return keys;
}

void BM_KeyedOneMillionKeys(benchmark::State& state) {
  static std::vector<std::string> keys = key_names();
  static std::unique_ptr<KeyedRateLimiter> limiter;
  static double bytes_per_key = 0;
  const auto algorithm = static_cast<Algorithm>(state.range(0));
  if (state.thread_index() == 0) {
    limiter.reset();
    const std::size_t before = mallinfo2().uordblks;
    limiter = std::make_unique<KeyedRateLimiter>(
        algorithm == Algorithm::gcra ? Limit::gcra(10, 20)
                                     : Limit::sliding_window_counter(20, seconds(1)),
        KeyedOptions{.max_keys = 2 * kKeys});
    for (const auto& key : keys) limiter->allow(key);
    bytes_per_key = static_cast<double>(mallinfo2().uordblks - before) / kKeys;
  }
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()));
  std::uniform_int_distribution<int> pick(0, kKeys - 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->try_acquire(keys[static_cast<std::size_t>(pick(rng))]));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes_per_key"] = bytes_per_key;
  state.SetLabel(std::string(to_string(algorithm)));
}
BENCHMARK(BM_KeyedOneMillionKeys)
    ->Arg(static_cast<int>(Algorithm::gcra))
    ->Arg(static_cast<int>(Algorithm::sliding_window_counter))
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

}  // namespace
}  // namespace keel::ratelimit

BENCHMARK_MAIN();
