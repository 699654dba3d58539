// The URL shortener's click log (case_studies/url_shortener/click_log.h): clicks per second
// through the recorder into the SQLite event store with the inline stats read model, by batch
// size — the rate the analytics can absorb behind the redirects.
//
//   build/release/bench/keel_click_log_benchmark
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "case_studies/url_shortener/click_log.h"
#include "keel/sqlite/event_store.h"
#include "tests/support/temp_dir.h"

namespace {

using namespace keel;
using namespace keel::shortener;

// Publishes state.range(0) clicks per iteration on a synchronous bus; the recorder appends a
// batch each time it holds state.range(0). Items = clicks.
void BM_ClickLogSqlite(benchmark::State& state) {
  keel::testing::TempDir dir("keel-click-bench");
  const std::string path = (dir.path() / "links.db").string();
  sqlite::SqliteEventStore events(path);
  SqliteClickStats stats(events, path);
  ManualClock clock;
  ManualScheduler scheduler(clock);
  pubsub::EventBus bus;
  const auto batch = static_cast<std::size_t>(state.range(0));
  ClickRecorder recorder(bus, events, scheduler,
                         {.max_batch = batch, .delivery = pubsub::Delivery::synchronous});
  std::uint64_t n = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < batch; ++i, ++n) {
      publish_click(bus, Click{.code = "c" + std::to_string(n % 1000),
                               .at = WallTime{std::chrono::seconds(1'790'000'000 + n / 100)},
                               .referrer = n % 3 == 0 ? "direct" : "news.example",
                               .agent = "browser",
                               .client = "203.0.113.0/24"});
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
  state.counters["recorded"] = static_cast<double>(recorder.metrics().recorded);
}
BENCHMARK(BM_ClickLogSqlite)->Arg(1)->Arg(50)->Arg(500)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
