// keel/resilience micro-benchmarks: what a circuit breaker adds to a call, and what a rejected
// call costs, on one thread and with two threads on one breaker.
// Run: build/release/bench/keel_resilience_benchmark  (figures: docs/resilience.md)
#include <benchmark/benchmark.h>

#include <memory>
#include <stdexcept>

#include "keel/resilience.h"

namespace keel::resilience {
namespace {

// The protected call: cheap, so that what is measured is the breaker.
int work(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}

void BM_DirectCall(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) x = work(x);
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DirectCall)->Threads(1)->Threads(2)->UseRealTime();

std::unique_ptr<CircuitBreaker> shared_breaker;

void BM_ClosedCall(benchmark::State& state) {
  if (state.thread_index() == 0) shared_breaker = std::make_unique<CircuitBreaker>();
  int x = 0;
  for (auto _ : state) x = shared_breaker->call(work, x);
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClosedCall)->Threads(1)->Threads(2)->UseRealTime();

void open_shared_breaker() {
  shared_breaker = std::make_unique<CircuitBreaker>(
      CircuitBreakerConfig{.failure_threshold = 1, .open_timeout = std::chrono::hours(1)});
  shared_breaker->force_open();
}

// Rejected by call(): the cost is mostly the CircuitBreakerOpen exception.
void BM_OpenRejectedCall(benchmark::State& state) {
  if (state.thread_index() == 0) open_shared_breaker();
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(shared_breaker->call(work, 1));
    } catch (const CircuitBreakerOpen&) {
      benchmark::ClobberMemory();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenRejectedCall)->Threads(1)->Threads(2)->UseRealTime();

// Rejected through the asynchronous protocol: no exception.
void BM_OpenRejectedPermission(benchmark::State& state) {
  if (state.thread_index() == 0) open_shared_breaker();
  for (auto _ : state) benchmark::DoNotOptimize(shared_breaker->try_acquire_permission());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpenRejectedPermission)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace keel::resilience

BENCHMARK_MAIN();
