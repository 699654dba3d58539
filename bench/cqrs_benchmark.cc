// keel::cqrs event stores: appends per second (one event, and batches of 100) and read_all
// events per second, for InMemoryEventStore, SqliteEventStore (a file in $TMPDIR, WAL,
// synchronous=FULL: one fsync per append) and PostgresEventStore (a private server started by
// the benchmark, from tests/support, with fsync and synchronous_commit off, over loopback TCP);
// then rebuilding a projection and loading an aggregate of 1,050 events with and without
// snapshots, in memory.
// Run: build/release/bench/keel_cqrs_benchmark (figures in docs/cqrs.md)
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/projection.h"
#include "keel/postgres/event_store.h"
#include "keel/sqlite/event_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"

namespace keel::cqrs {
namespace {

constexpr int kStreams = 1000;
constexpr std::size_t kReadAllEvents = 20'000;

const std::string kData = R"({"account":"account-42","amount":125,"currency":"EUR"})";

std::vector<NewEvent> batch_of(std::size_t size) {
  return std::vector<NewEvent>(size, NewEvent{.type = "Deposited", .data = kData});
}

testing::TempDir& temp_dir() {
  static testing::TempDir dir("keel-cqrs-bench");
  return dir;
}

testing::PostgresServer& postgres_server() {
  static const auto server = testing::PostgresServer::start();
  return *server;
}

// A fresh, empty store of each kind.
std::unique_ptr<EventStore> make_store(const std::string& kind) {
  static int databases = 0;
  const std::string name = fmt::format("bench_{}", ++databases);
  if (kind == "sqlite") {
    return std::make_unique<sqlite::SqliteEventStore>((temp_dir().path() / name).string());
  }
  if (kind == "postgres") {
    return std::make_unique<postgres::PostgresEventStore>(postgres_server().create_database(name));
  }
  return std::make_unique<InMemoryEventStore>();
}

void BM_Append(benchmark::State& state, const std::string& kind) {
  const auto store = make_store(kind);
  const std::vector<NewEvent> batch = batch_of(static_cast<std::size_t>(state.range(0)));
  int i = 0;
  for (auto _ : state) {
    store->append(fmt::format("account-{}", i++ % kStreams), ExpectedVersion::any(), batch);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // events
  state.counters["appends/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ReadAll(benchmark::State& state, const std::string& kind) {
  const auto store = make_store(kind);
  const std::vector<NewEvent> batch = batch_of(100);
  for (std::size_t written = 0; written < kReadAllEvents; written += batch.size()) {
    store->append(fmt::format("account-{}", written % kStreams), ExpectedVersion::any(), batch);
  }
  const auto page = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::uint64_t after = 0;
    for (;;) {
      const std::vector<RecordedEvent> events = store->read_all(after, page);
      if (events.empty()) break;
      after = events.back().position;
    }
    benchmark::DoNotOptimize(after);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kReadAllEvents));
}

// A read model of balances per stream, as a service would keep one.
class Balances final : public Projection {
 public:
  std::uint64_t checkpoint() override { return checkpoint_; }
  void apply(const RecordedEvent& event) override {
    balances_[event.stream] += boost::json::parse(event.data).at("amount").as_int64();
    checkpoint_ = event.position;
  }
  void reset() override {
    balances_.clear();
    checkpoint_ = 0;
  }

 private:
  std::map<std::string, std::int64_t> balances_;
  std::uint64_t checkpoint_ = 0;
};

void BM_ProjectionRebuild(benchmark::State& state) {
  InMemoryEventStore store;
  const std::vector<NewEvent> batch = batch_of(100);
  for (std::size_t written = 0; written < kReadAllEvents; written += batch.size()) {
    store.append(fmt::format("account-{}", written % kStreams), ExpectedVersion::any(), batch);
  }
  Balances balances;
  ProjectionRunner runner(store, balances);
  for (auto _ : state) runner.rebuild();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kReadAllEvents));
}

class Account final : public Aggregate {
 public:
  std::int64_t balance() const { return balance_; }
  void deposit(std::int64_t amount) { raise("Deposited", {{"amount", amount}}); }

 private:
  void apply(std::string_view, const boost::json::value& data) override {
    balance_ += data.at("amount").as_int64();
  }
  std::optional<boost::json::value> snapshot() const override {
    return boost::json::value(balance_);
  }
  void restore(const boost::json::value& state) override { balance_ = state.as_int64(); }
  std::int64_t balance_ = 0;
};

// Loads an aggregate whose stream holds 1,050 events; with snapshots every 100 events the load
// reads the snapshot taken at 1,000 and the 50 events after it.
void BM_AggregateLoad(benchmark::State& state, bool snapshots) {
  InMemoryEventStore store;
  InMemorySnapshotStore snapshot_store;
  Repository accounts(store,
                      {.snapshots = snapshots ? &snapshot_store : nullptr, .snapshot_every = 100});
  for (int i = 0; i < 11; ++i) {
    auto account = accounts.load<Account>("account-1");
    for (int j = 0; j < (i < 10 ? 100 : 50); ++j) account.deposit(1);
    accounts.save(account);
  }
  for (auto _ : state) {
    const auto account = accounts.load<Account>("account-1");
    benchmark::DoNotOptimize(account.balance());
  }
  state.counters["events_read_per_load"] =
      benchmark::Counter(static_cast<double>(accounts.metrics().events_read) /
                         static_cast<double>(accounts.metrics().loads));
}

// Rates in wall-clock time: the SQL stores wait on fsync and on round trips, not on the CPU.
BENCHMARK_CAPTURE(BM_Append, memory, std::string("memory"))->Arg(1)->Arg(100)->UseRealTime();
BENCHMARK_CAPTURE(BM_Append, sqlite, std::string("sqlite"))
    ->Arg(1)
    ->Arg(100)
    ->MinTime(1.0)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Append, postgres, std::string("postgres"))
    ->Arg(1)
    ->Arg(100)
    ->MinTime(1.0)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ReadAll, memory, std::string("memory"))->Arg(1000)->UseRealTime();
BENCHMARK_CAPTURE(BM_ReadAll, sqlite, std::string("sqlite"))->Arg(1000)->UseRealTime();
BENCHMARK_CAPTURE(BM_ReadAll, postgres, std::string("postgres"))->Arg(1000)->UseRealTime();
BENCHMARK(BM_ProjectionRebuild)->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, without_snapshots, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, with_snapshots, true)->UseRealTime();

}  // namespace
}  // namespace keel::cqrs

BENCHMARK_MAIN();
