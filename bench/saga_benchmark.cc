// Sagas per second for the three-step order saga (8 log records each), with no log, the
// in-memory log, the SQLite log (synchronous=FULL and NORMAL) and the PostgreSQL log, plus the
// compensated path. Figures and the machine: docs/saga.md.
//
//   build/release/bench/keel_saga_benchmark
//
// The PostgreSQL server is the test one from tests/support: loopback, fsync off (it is thrown
// away), so its figure is the cost of the round trips, not of the disk.
#include <benchmark/benchmark.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "keel/saga/saga.h"
#include "keel/saga/saga_log.h"
#include "keel/sqlite/saga_log.h"
#include "tests/support/temp_dir.h"
#ifdef KEEL_BENCH_POSTGRES
#include "keel/postgres/saga_log.h"
#include "tests/support/postgres_server.h"
#endif

namespace keel::saga {
namespace {

std::vector<SagaStep> order_steps(bool fail_last) {
  const Action work = [](Context& c) { c["n"] = c.at("n").as_int64() + 1; };
  const Action fail = [](Context&) { throw std::runtime_error("declined"); };
  return {{"reserve_inventory", work, work},
          {"charge_payment", work, work},
          {"send_confirmation", fail_last ? fail : work, no_op}};
}

void run(benchmark::State& state, SagaLog* log, bool fail_last = false) {
  const Saga saga("order", order_steps(fail_last), SagaOptions{.log = log});
  for (auto _ : state) {
    const SagaResult result = saga.execute({{"n", 0}});
    benchmark::DoNotOptimize(result.status);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["records_per_saga"] =
      log != nullptr ? static_cast<double>(log->history(saga.execute({{"n", 0}}).saga_id).size())
                     : 0;
}

void BM_Saga_NoLog(benchmark::State& state) { run(state, nullptr); }
BENCHMARK(BM_Saga_NoLog);

void BM_Saga_InMemoryLog(benchmark::State& state) {
  InMemorySagaLog log;
  run(state, &log);
}
BENCHMARK(BM_Saga_InMemoryLog);

void BM_Saga_InMemoryLog_Compensated(benchmark::State& state) {
  InMemorySagaLog log;
  run(state, &log, /*fail_last=*/true);
}
BENCHMARK(BM_Saga_InMemoryLog_Compensated);

void BM_Saga_SqliteLog(benchmark::State& state) {
  const keel::testing::TempDir dir("keel-saga-bench");
  sqlite::SqliteSagaLog log((dir.path() / "sagas.db").string(),
                            {.owner = "bench", .sync_every_commit = state.range(0) != 0});
  run(state, &log);
  state.SetLabel(state.range(0) != 0 ? "synchronous=FULL" : "synchronous=NORMAL");
}
BENCHMARK(BM_Saga_SqliteLog)->Arg(1)->Arg(0)->UseRealTime();

#ifdef KEEL_BENCH_POSTGRES
void BM_Saga_PostgresLog(benchmark::State& state) {
  static const auto server = keel::testing::PostgresServer::start();
  static int databases = 0;
  postgres::PostgresSagaLog log(server->create_database(std::string("saga_bench_").append(std::to_string(databases++))));
  run(state, &log);
  state.SetLabel("test server: loopback, fsync off");
}
BENCHMARK(BM_Saga_PostgresLog)->UseRealTime();
#endif

}  // namespace
}  // namespace keel::saga

BENCHMARK_MAIN();
