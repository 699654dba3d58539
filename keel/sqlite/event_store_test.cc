// SqliteEventStore: the EventStore conformance suite on a fresh file per test, plus what only a
// file can show (reopening, two stores on one file, WAL). The crash test is in
// tests/integration/event_store_sqlite_crash_test.cc.
#include "keel/sqlite/event_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/core/scheduler.h"
#include "keel/cqrs/event_poller.h"
#include "keel/cqrs/event_store_conformance.h"
#include "keel/cqrs/upcasting.h"
#include "keel/sqlite/database.h"
#include "tests/support/temp_dir.h"

namespace keel::sqlite {
namespace {

using cqrs::ExpectedVersion;
using cqrs::NewEvent;
using cqrs::WrongExpectedVersion;
using cqrs::testing::event;
using cqrs::testing::EventStoreCase;
using cqrs::testing::EventStoreConcurrencyTest;
using cqrs::testing::EventStoreConformanceTest;
using cqrs::testing::one_to;
using cqrs::testing::positions_of;

// One directory for the executable, one file per store.
std::string new_file() {
  static const keel::testing::TempDir dir("keel-sqlite-events");
  static std::atomic<int> count{0};
  return (dir.path() / ("events-" + std::to_string(++count) + ".db")).string();
}

const EventStoreCase kSqliteFile{"sqlite", [](ManualClock& clock) {
                                   return std::make_unique<SqliteEventStore>(new_file(), clock);
                                 }};

INSTANTIATE_TEST_SUITE_P(Sqlite, EventStoreConformanceTest, ::testing::Values(kSqliteFile),
                         cqrs::testing::event_store_case_name);
INSTANTIATE_TEST_SUITE_P(Sqlite, EventStoreConcurrencyTest, ::testing::Values(kSqliteFile),
                         cqrs::testing::event_store_case_name);

std::vector<NewEvent> one(const std::string& type) { return {event(type)}; }

TEST(SqliteEventStoreTest, EventsOutliveTheStoreAndPositionsContinueAfterReopening) {
  const std::string file = new_file();
  ManualClock clock;
  {
    SqliteEventStore store(file, clock);
    store.append("s", ExpectedVersion::no_stream(), std::vector{event("A"), event("B")});
  }
  SqliteEventStore reopened(file, clock);
  EXPECT_EQ(reopened.stream_version("s"), 2U);
  EXPECT_EQ(reopened.append("t", ExpectedVersion::no_stream(), one("C")).position, 3U);
  EXPECT_EQ(positions_of(reopened.read_all()), one_to(3));
}

TEST(SqliteEventStoreTest, TwoStoresOnOneFileShareVersionsAndOneOrder) {
  const std::string file = new_file();
  SqliteEventStore first(file);
  SqliteEventStore second(file);
  first.append("s", ExpectedVersion::no_stream(), one("A"));
  EXPECT_THROW(second.append("s", ExpectedVersion::no_stream(), one("B")), WrongExpectedVersion);
  EXPECT_EQ(second.append("s", ExpectedVersion::exactly(1), one("B")).position, 2U);
  EXPECT_EQ(first.append("t", ExpectedVersion::any(), one("C")).position, 3U);

  std::vector<std::uint64_t> seen;
  Subscription subscription =
      first.subscribe_all(0, [&](const cqrs::RecordedEvent& e) { seen.push_back(e.position); });
  EXPECT_EQ(seen, one_to(3)) << "the catch-up reads what the other store wrote";
  second.append("t", ExpectedVersion::any(), one("D"));
  EXPECT_EQ(seen, one_to(3)) << "live events come from this store's own appends";
  first.append("t", ExpectedVersion::any(), one("E"));
  EXPECT_EQ(seen, one_to(5)) << "... which deliver everything committed before them, in order";
  second.append("t", ExpectedVersion::any(), one("F"));
  first.deliver_new_events();
  EXPECT_EQ(seen, one_to(6)) << "or on demand";
}

TEST(SqliteEventStoreTest, TheFileIsInWalMode) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  Database db(file, {.read_only = true});
  Statement mode = db.prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.step());
  EXPECT_EQ(mode.column_text(0), "wal");
}

// A read model in SQL: the balance of each account, from its Deposited events.
class BalancesTable final : public SqliteReadModel {
 public:
  std::string name() const override { return "balances"; }
  void create(Database& db) override {
    db.execute(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)");
  }
  void update(Database& db, const cqrs::RecordedEvent& event) override {
    if (event.type == "Poison") throw std::runtime_error("cannot project this event");
    if (event.type != "Deposited") return;
    Statement upsert = db.prepare(
        "INSERT INTO balances (account, amount) VALUES (?1, json_extract(?2, '$.amount')) "
        "ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount");
    upsert.bind_text(1, event.stream).bind_text(2, event.data);
    upsert.step();
  }
  void clear(Database& db) override { db.execute("DELETE FROM balances"); }
};

// The read model as a query sees it, through a connection of its own.
std::map<std::string, std::int64_t> balances_in(const std::string& file) {
  Database db(file, {.read_only = true});
  Statement query = db.prepare("SELECT account, amount FROM balances ORDER BY account");
  std::map<std::string, std::int64_t> balances;
  while (query.step()) balances[query.column_text(0)] = query.column_int64(1);
  return balances;
}

std::uint64_t checkpoint_in(const std::string& file, const std::string& name) {
  Database db(file, {.read_only = true});
  Statement query = db.prepare("SELECT position FROM keel_checkpoints WHERE name = ?1");
  query.bind_text(1, name);
  return query.step() ? static_cast<std::uint64_t>(query.column_int64(0)) : 0;
}

std::vector<NewEvent> deposit(int amount) {
  return {event("Deposited", fmt::format(R"({{"amount":{}}})", amount))};
}

using Balances = std::map<std::string, std::int64_t>;

TEST(SqliteSnapshotStoreTest, SnapshotsSurviveReopeningAndOnlyNewerOnesReplaceThem) {
  const std::string file = new_file();
  {
    SqliteSnapshotStore snapshots(file);
    EXPECT_FALSE(snapshots.load("account-1").has_value());
    snapshots.save("account-1", {.version = 20, .state = R"({"balance":240})"});
    snapshots.save("account-1", {.version = 10, .state = R"({"balance":100})"});  // older: kept out
  }
  SqliteSnapshotStore reopened(file);
  const auto snapshot = reopened.load("account-1");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 20U);
  EXPECT_EQ(snapshot->state, R"({"balance":240})");
  reopened.save("account-1", {.version = 30, .state = R"({"balance":300})"});
  EXPECT_EQ(reopened.load("account-1")->version, 30U);
}

TEST(SqliteCheckpointStoreTest, CheckpointsSurviveReopening) {
  const std::string file = new_file();
  {
    SqliteCheckpointStore checkpoints(file);
    EXPECT_EQ(checkpoints.load("outbox"), 0U);
    checkpoints.save("outbox", 41);
    checkpoints.save("outbox", 42);
    checkpoints.save("other", 7);
  }
  SqliteCheckpointStore reopened(file);
  EXPECT_EQ(reopened.load("outbox"), 42U);
  EXPECT_EQ(reopened.load("other"), 7U);
}

TEST(SqliteReadModelTest, AnInlineReadModelChangesInTheSameTransactionAsTheAppend) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  store.append("account-1", ExpectedVersion::any(), deposit(10));  // before: caught up on add
  BalancesTable balances;
  store.add_inline_read_model(balances);
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 10}}));
  store.append("account-2", ExpectedVersion::any(), deposit(5));
  store.append("account-1", ExpectedVersion::any(), deposit(7));
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 17}, {"account-2", 5}}))
      << "visible to any connection as soon as append() returns";
  EXPECT_EQ(checkpoint_in(file, "balances"), 3U);
}

TEST(SqliteReadModelTest, AnInlineReadModelCatchesUpWithAppendsOfAStoreThatDoesNotRunIt) {
  const std::string file = new_file();
  SqliteEventStore running(file);
  SqliteEventStore other(file);  // another process, without the read model
  BalancesTable balances;
  running.add_inline_read_model(balances);
  other.append("account-1", ExpectedVersion::any(), deposit(4));
  EXPECT_TRUE(balances_in(file).empty()) << "lags until the next append that runs it";
  running.append("account-2", ExpectedVersion::any(), deposit(6));
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 4}, {"account-2", 6}}));
  EXPECT_EQ(checkpoint_in(file, "balances"), 2U);
}

TEST(SqliteReadModelTest, AnInlineUpdateThatThrowsFailsTheAppend) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  BalancesTable balances;
  store.add_inline_read_model(balances);
  store.append("account-1", ExpectedVersion::any(), deposit(10));
  EXPECT_THROW(store.append("account-1", ExpectedVersion::any(),
                            std::vector{deposit(1)[0], event("Poison")}),
               std::runtime_error);
  EXPECT_EQ(store.stream_version("account-1"), 1U) << "the log and the read model stay in step";
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 10}}));
  EXPECT_EQ(checkpoint_in(file, "balances"), 1U);
}

TEST(SqliteReadModelTest, AnInlineReadModelIsRebuiltFromTheWholeLog) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  BalancesTable balances;
  store.add_inline_read_model(balances);
  store.append("account-1", ExpectedVersion::any(), deposit(10));
  store.append("account-2", ExpectedVersion::any(), deposit(20));
  Database(file).execute("UPDATE balances SET amount = 0");  // a damaged read model
  store.rebuild_inline_read_model(balances);
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 10}, {"account-2", 20}}));
  BalancesTable not_added;
  EXPECT_THROW(store.rebuild_inline_read_model(not_added), std::invalid_argument);
}

TEST(SqliteReadModelTest, AnAsyncProjectionKeepsItsCheckpointWithTheReadModel) {
  const std::string events_file = new_file();
  const std::string read_file = new_file();
  SqliteEventStore store(events_file);
  store.append("account-1", ExpectedVersion::any(), deposit(10));
  {
    Database db(read_file);
    BalancesTable balances;
    SqliteProjection projection(db, balances);
    cqrs::ProjectionRunner runner(store, projection);
    runner.start();
    store.append("account-1", ExpectedVersion::any(), deposit(5));
    EXPECT_EQ(balances_in(read_file), (Balances{{"account-1", 15}}));
    projection.apply(store.read_all()[1]);  // delivered twice: ignored
    EXPECT_EQ(balances_in(read_file), (Balances{{"account-1", 15}}));
  }  // the process stops
  store.append("account-2", ExpectedVersion::any(), deposit(1));
  Database db(read_file);
  BalancesTable balances;
  SqliteProjection projection(db, balances);
  cqrs::ProjectionRunner runner(store, projection);
  runner.start();
  EXPECT_EQ(runner.metrics().applied, 1U) << "resumed after the stored checkpoint";
  EXPECT_EQ(balances_in(read_file), (Balances{{"account-1", 15}, {"account-2", 1}}));
  runner.rebuild();
  EXPECT_EQ(balances_in(read_file), (Balances{{"account-1", 15}, {"account-2", 1}}));
  EXPECT_EQ(checkpoint_in(read_file, "balances"), 3U);
}

// Version 1 wrote deposits as "MoneyAdded" {"value": n}; the read model knows "Deposited".
cqrs::Upcasters money_added_is_deposited() {
  cqrs::Upcasters upcasters;
  upcasters.add("MoneyAdded", "Deposited", [](boost::json::value& data) {
    data = {{"amount", data.at("value")}};
  });
  return upcasters;
}

TEST(SqliteReadModelTest, AnInlineReadModelSeesOldEventsUpcast) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  store.append("account-1", ExpectedVersion::any(),
               std::vector{event("MoneyAdded", R"({"value":10})")});  // an old writer
  const cqrs::Upcasters upcasters = money_added_is_deposited();
  BalancesTable balances;
  store.add_inline_read_model(balances, &upcasters);
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 10}})) << "caught up, upcast";
  store.append("account-1", ExpectedVersion::any(),
               std::vector{event("MoneyAdded", R"({"value":3})")});
  store.append("account-1", ExpectedVersion::any(), deposit(1));
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 14}}));
  store.rebuild_inline_read_model(balances);
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 14}})) << "a rebuild upcasts too";
  EXPECT_EQ(store.read_all()[0].type, "MoneyAdded") << "the log is never rewritten";
}

TEST(SqliteReadModelTest, AnUpcasterThatThrowsInAnInlineReadModelFailsTheAppend) {
  const std::string file = new_file();
  SqliteEventStore store(file);
  cqrs::Upcasters upcasters;
  upcasters.add("MoneyAdded", [](cqrs::RecordedEvent) -> cqrs::RecordedEvent {
    throw std::runtime_error("cannot read this version");
  });
  BalancesTable balances;
  store.add_inline_read_model(balances, &upcasters);
  store.append("account-1", ExpectedVersion::any(), deposit(2));
  EXPECT_THROW(store.append("account-1", ExpectedVersion::any(),
                            std::vector{event("MoneyAdded", R"({"value":1})")}),
               cqrs::UpcastFailed);
  EXPECT_EQ(store.stream_version("account-1"), 1U) << "nothing written";
  EXPECT_EQ(balances_in(file), (Balances{{"account-1", 2}}));
}

TEST(SqliteEventPollerTest, EventsOfASecondStoreOnTheFileArriveWhenTheSchedulerAdvances) {
  const std::string file = new_file();
  ManualClock clock;
  ManualScheduler scheduler(clock);
  SqliteEventStore here(file, clock);
  SqliteEventStore elsewhere(file, clock);  // as another process would
  std::vector<std::uint64_t> seen;
  Subscription subscription =
      here.subscribe_all(0, [&](const cqrs::RecordedEvent& e) { seen.push_back(e.position); });
  const std::string read_file = new_file();
  Database read_db(read_file);
  BalancesTable balances;
  SqliteProjection projection(read_db, balances);
  cqrs::ProjectionRunner runner(here, projection);
  runner.start();
  cqrs::EventPoller poller(scheduler, here, {.interval = std::chrono::milliseconds(100)});

  elsewhere.append("account-1", ExpectedVersion::any(), deposit(5));
  elsewhere.append("account-2", ExpectedVersion::any(), deposit(6));
  clock.advance(std::chrono::milliseconds(99));
  EXPECT_TRUE(seen.empty()) << "not before the poll";
  EXPECT_TRUE(balances_in(read_file).empty());
  clock.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(seen, one_to(2));
  EXPECT_EQ(balances_in(read_file), (Balances{{"account-1", 5}, {"account-2", 6}}));
  EXPECT_EQ(runner.position(), 2U);

  elsewhere.append("account-1", ExpectedVersion::any(), deposit(1));
  poller.wake();
  scheduler.run_due();
  EXPECT_EQ(seen, one_to(3)) << "a wake polls without waiting for the interval";
  EXPECT_EQ(poller.metrics().polls, 2U);
}

}  // namespace
}  // namespace keel::sqlite
