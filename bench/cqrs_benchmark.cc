// keel::cqrs event stores: appends per second (one event, and batches of 100) and read_all
// events per second, for InMemoryEventStore, SqliteEventStore (a file in $TMPDIR, WAL,
// synchronous=FULL: one fsync per append) and PostgresEventStore (a private server started by
// the benchmark, from tests/support, with fsync and synchronous_commit off, over loopback TCP);
// rebuilding a projection from each store's log (an in-memory read model fed by a
// ProjectionRunner, and on the SQL stores a read-model table rebuilt inline in one
// transaction); and loading an aggregate of 1,050 events with and without snapshots, from each
// store (snapshots in InMemorySnapshotStore, SqliteSnapshotStore, PostgresSnapshotStore).
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

// Where a store keeps its events: a fresh, empty database of each kind.
struct Backend {
  std::string kind;      // "memory", "sqlite" or "postgres"
  std::string location;  // the SQLite file or the PostgreSQL connection string

  static Backend fresh(const std::string& kind) {
    static int databases = 0;
    const std::string name = fmt::format("bench_{}", ++databases);
    if (kind == "sqlite") return {kind, (temp_dir().path() / name).string()};
    if (kind == "postgres") return {kind, postgres_server().create_database(name)};
    return {kind, ""};
  }

  std::unique_ptr<EventStore> store() const {
    if (kind == "sqlite") return std::make_unique<sqlite::SqliteEventStore>(location);
    if (kind == "postgres") return std::make_unique<postgres::PostgresEventStore>(location);
    return std::make_unique<InMemoryEventStore>();
  }

  std::unique_ptr<SnapshotStore> snapshots() const {
    if (kind == "sqlite") return std::make_unique<sqlite::SqliteSnapshotStore>(location);
    if (kind == "postgres") return std::make_unique<postgres::PostgresSnapshotStore>(location);
    return std::make_unique<InMemorySnapshotStore>();
  }
};

std::unique_ptr<EventStore> make_store(const std::string& kind) {
  return Backend::fresh(kind).store();
}

// kReadAllEvents deposits, in batches of 100, over kStreams accounts.
void fill(EventStore& store) {
  const std::vector<NewEvent> batch = batch_of(100);
  for (std::size_t written = 0; written < kReadAllEvents; written += batch.size()) {
    store.append(fmt::format("account-{}", written % kStreams), ExpectedVersion::any(), batch);
  }
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
  fill(*store);
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

// The whole log read from the store again (in pages, by the runner's catch-up subscription)
// and applied to a read model in memory.
void BM_ProjectionRebuild(benchmark::State& state, const std::string& kind) {
  const auto store = make_store(kind);
  fill(*store);
  Balances balances;
  ProjectionRunner runner(*store, balances);
  for (auto _ : state) runner.rebuild();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kReadAllEvents));
}

// The same read model as a table next to the log, rebuilt inline: emptied, then every event
// applied, in one transaction.
class SqliteBalances final : public sqlite::SqliteReadModel {
 public:
  std::string name() const override { return "balances"; }
  void create(sqlite::Database& db) override {
    db.execute(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)");
  }
  void update(sqlite::Database& db, const RecordedEvent& event) override {
    sqlite::Statement upsert = db.prepare(
        "INSERT INTO balances (account, amount) VALUES (?1, json_extract(?2, '$.amount')) "
        "ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount");
    upsert.bind_text(1, event.stream).bind_text(2, event.data);
    upsert.step();
  }
  void clear(sqlite::Database& db) override { db.execute("DELETE FROM balances"); }
};

class PostgresBalances final : public postgres::PostgresReadModel {
 public:
  std::string name() const override { return "balances"; }
  void create(postgres::Transaction& tx) override {
    tx.execute("CREATE TABLE IF NOT EXISTS balances (account text PRIMARY KEY, amount bigint)");
  }
  void update(postgres::Transaction& tx, const RecordedEvent& event) override {
    tx.execute(
        "INSERT INTO balances (account, amount) VALUES ($1, ($2::json->>'amount')::bigint) "
        "ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount",
        {event.stream, event.data});
  }
  void clear(postgres::Transaction& tx) override { tx.execute("DELETE FROM balances"); }
};

template <class Store, class Model>
void rebuild_inline(benchmark::State& state, const Backend& backend) {
  Store store(backend.location);
  fill(store);
  Model balances;
  store.add_inline_read_model(balances);
  for (auto _ : state) store.rebuild_inline_read_model(balances);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kReadAllEvents));
}

void BM_InlineReadModelRebuild(benchmark::State& state, const std::string& kind) {
  const Backend backend = Backend::fresh(kind);
  if (kind == "sqlite") {
    rebuild_inline<sqlite::SqliteEventStore, SqliteBalances>(state, backend);
  } else {
    rebuild_inline<postgres::PostgresEventStore, PostgresBalances>(state, backend);
  }
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

// Loads an aggregate whose stream holds 1,050 events (other streams hold kReadAllEvents more);
// with snapshots every 100 events the load reads the snapshot taken at 1,000 and the 50 events
// after it.
void BM_AggregateLoad(benchmark::State& state, const std::string& kind, bool snapshots) {
  const Backend backend = Backend::fresh(kind);
  const auto store = backend.store();
  fill(*store);
  const auto snapshot_store = backend.snapshots();
  Repository accounts(
      *store, {.snapshots = snapshots ? snapshot_store.get() : nullptr, .snapshot_every = 100});
  for (int i = 0; i < 11; ++i) {
    auto account = accounts.load<Account>("account-x");
    for (int j = 0; j < (i < 10 ? 100 : 50); ++j) account.deposit(1);
    accounts.save(account);
  }
  const RepositoryMetrics before = accounts.metrics();
  for (auto _ : state) {
    const auto account = accounts.load<Account>("account-x");
    benchmark::DoNotOptimize(account.balance());
  }
  const RepositoryMetrics after = accounts.metrics();
  state.counters["events_read_per_load"] =
      benchmark::Counter(static_cast<double>(after.events_read - before.events_read) /
                         static_cast<double>(after.loads - before.loads));
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
BENCHMARK_CAPTURE(BM_ProjectionRebuild, memory, std::string("memory"))->UseRealTime();
BENCHMARK_CAPTURE(BM_ProjectionRebuild, sqlite, std::string("sqlite"))->UseRealTime();
BENCHMARK_CAPTURE(BM_ProjectionRebuild, postgres, std::string("postgres"))->UseRealTime();
BENCHMARK_CAPTURE(BM_InlineReadModelRebuild, sqlite, std::string("sqlite"))->UseRealTime();
BENCHMARK_CAPTURE(BM_InlineReadModelRebuild, postgres, std::string("postgres"))->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, memory_without_snapshots, std::string("memory"), false)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, memory_with_snapshots, std::string("memory"), true)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, sqlite_without_snapshots, std::string("sqlite"), false)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, sqlite_with_snapshots, std::string("sqlite"), true)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, postgres_without_snapshots, std::string("postgres"), false)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_AggregateLoad, postgres_with_snapshots, std::string("postgres"), true)
    ->UseRealTime();

}  // namespace
}  // namespace keel::cqrs

BENCHMARK_MAIN();
