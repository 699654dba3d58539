// keel/core micro-benchmarks. Run: make bench  (or build/release/bench/keel_core_benchmark)
#include <benchmark/benchmark.h>

#include <atomic>

#include "keel/core.h"

namespace keel {
namespace {

void BM_CounterInc(benchmark::State& state) {
  static Counter counter;  // shared by all threads: measures contention on one cache line
  for (auto _ : state) counter.inc();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram histogram(Histogram::default_buckets());
  double v = 0;
  for (auto _ : state) {
    histogram.observe(v);
    v = v > 10 ? 0 : v + 0.013;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_RegistryRender(benchmark::State& state) {
  MetricsRegistry registry;
  for (int i = 0; i < state.range(0); ++i) {
    registry.counter("requests_total", "R", {{"route", std::to_string(i)}})
        .inc(static_cast<std::uint64_t>(i));
    registry
        .histogram("latency_seconds", "L", Histogram::default_buckets(),
                   {{"route", std::to_string(i)}})
        .observe(0.01 * i);
  }
  for (auto _ : state) benchmark::DoNotOptimize(registry.render());
  state.SetLabel(std::to_string(state.range(0)) + " routes");
}
BENCHMARK(BM_RegistryRender)->Arg(10)->Arg(100);

void BM_Base62Encode(benchmark::State& state) {
  std::uint64_t v = 1234567890123;
  for (auto _ : state) benchmark::DoNotOptimize(base62_encode(v++, 7));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Base62Encode);

void BM_Base62Decode(benchmark::State& state) {
  const std::string code = base62_encode(3'000'000'000'000ULL, 7);
  for (auto _ : state) benchmark::DoNotOptimize(base62_decode(code));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Base62Decode);

void BM_Sha256Url(benchmark::State& state) {
  const std::string url = "https://example.com/some/long/path?with=query&and=more#fragment";
  for (auto _ : state) benchmark::DoNotOptimize(sha256_hex(url));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sha256Url);

void BM_ManualSchedulerScheduleAndFire(benchmark::State& state) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  int runs = 0;
  const auto batch = state.range(0);
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      scheduler.schedule_after(std::chrono::microseconds(i % 100), [&] { ++runs; });
    }
    clock.advance(std::chrono::milliseconds(1));
  }
  benchmark::DoNotOptimize(runs);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_ManualSchedulerScheduleAndFire)->Arg(1000);

void BM_ThreadPoolScheduleCancel(benchmark::State& state) {
  ThreadPoolScheduler scheduler(2);
  for (auto _ : state) {
    auto handle = scheduler.schedule_after(std::chrono::hours(1), [] {});
    handle.cancel();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadPoolScheduleCancel);

void BM_ThreadPoolRunNow(benchmark::State& state) {
  ThreadPoolScheduler scheduler(2);
  std::atomic<std::int64_t> ran{0};
  std::int64_t submitted = 0;
  for (auto _ : state) {
    scheduler.schedule_after(Duration::zero(),
                             [&] { ran.fetch_add(1, std::memory_order_relaxed); });
    ++submitted;
  }
  while (ran.load() < submitted) {
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadPoolRunNow);

void BM_ListenerNotify(benchmark::State& state) {
  ListenerSet<int> listeners;
  std::vector<Subscription> subs;
  int sum = 0;
  for (int i = 0; i < state.range(0); ++i) subs.push_back(listeners.add([&](int v) { sum += v; }));
  for (auto _ : state) listeners.notify(1);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ListenerNotify)->Arg(1)->Arg(8);

}  // namespace
}  // namespace keel

BENCHMARK_MAIN();
