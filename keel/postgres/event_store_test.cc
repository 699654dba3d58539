// PostgresEventStore against a private PostgreSQL (tests/support): the EventStore conformance
// suite on a fresh database per test, plus what only the server shows (schema creation by
// processes starting together, events from another writer). Two writing processes at once:
// tests/integration/event_store_postgres_writers_test.cc.
#include "keel/postgres/event_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/cqrs/event_store_conformance.h"
#include "keel/postgres/connection.h"
#include "tests/support/postgres_server.h"

#if defined(__SANITIZE_ADDRESS__)
// libpqxx 6.4 leaks the PGresult of a statement that finds its connection lost; see
// connection_test.cc.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx\n"; }
#endif

namespace keel::postgres {
namespace {

using cqrs::ExpectedVersion;
using cqrs::NewEvent;
using cqrs::testing::event;
using cqrs::testing::EventStoreCase;
using cqrs::testing::EventStoreConcurrencyTest;
using cqrs::testing::EventStoreConformanceTest;
using cqrs::testing::one_to;
using cqrs::testing::positions_of;

// One server for the executable (started on first use), one database per store.
std::string new_database() {
  static std::string start_error;
  static const std::unique_ptr<testing::PostgresServer> server = [] {
    try {
      return testing::PostgresServer::start();
    } catch (const std::exception& e) {
      start_error = e.what();
      return std::unique_ptr<testing::PostgresServer>();
    }
  }();
  if (server == nullptr) throw std::runtime_error("could not start PostgreSQL: " + start_error);
  static std::atomic<int> count{0};
  return server->create_database("events_" + std::to_string(++count));
}

const EventStoreCase kPostgres{"postgres", [](ManualClock& clock) {
                                 return std::make_unique<PostgresEventStore>(new_database(), clock);
                               }};

INSTANTIATE_TEST_SUITE_P(Postgres, EventStoreConformanceTest, ::testing::Values(kPostgres),
                         cqrs::testing::event_store_case_name);
INSTANTIATE_TEST_SUITE_P(Postgres, EventStoreConcurrencyTest, ::testing::Values(kPostgres),
                         cqrs::testing::event_store_case_name);

std::vector<NewEvent> one(const std::string& type) { return {event(type)}; }

TEST(PostgresEventStoreTest, StoresOpeningTogetherOnAnEmptyDatabaseCreateTheSchemaOnce) {
  const std::string database = new_database();
  std::vector<std::unique_ptr<PostgresEventStore>> stores(4);
  std::vector<std::thread> threads;
  for (auto& store : stores) {
    threads.emplace_back([&] { store = std::make_unique<PostgresEventStore>(database); });
  }
  for (std::thread& thread : threads) thread.join();
  for (std::size_t i = 0; i < stores.size(); ++i) {
    EXPECT_EQ(stores[i]->append("s", ExpectedVersion::exactly(i), one("E")).position, i + 1);
  }
}

TEST(PostgresEventStoreTest, StoresOnOneDatabaseShareVersionsAndOneOrder) {
  const std::string database = new_database();
  PostgresEventStore first(database);
  PostgresEventStore second(database);
  first.append("s", ExpectedVersion::no_stream(), one("A"));
  EXPECT_THROW(second.append("s", ExpectedVersion::no_stream(), one("B")),
               cqrs::WrongExpectedVersion);
  EXPECT_EQ(second.append("s", ExpectedVersion::exactly(1), one("B")).position, 2U);

  std::vector<std::uint64_t> seen;
  Subscription subscription =
      first.subscribe_all(0, [&](const cqrs::RecordedEvent& e) { seen.push_back(e.position); });
  EXPECT_EQ(seen, one_to(2));
  second.append("t", ExpectedVersion::any(), one("C"));
  first.deliver_new_events();
  EXPECT_EQ(seen, one_to(3)) << "events of another writer, delivered on demand";
}

TEST(PostgresEventStoreTest, TheTablesArePlainSqlForOtherTools) {
  const std::string database = new_database();
  PostgresEventStore store(database);
  store.append("account-1", ExpectedVersion::any(),
               std::vector{event("Deposited", R"({"amount": 25})")});
  Connection db(database);
  const Result rows = db.execute(
      "SELECT (data->>'amount')::int, position FROM keel_events WHERE stream = 'account-1'");
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].as_int64(0), 25) << "data is json: queryable in SQL";
  EXPECT_EQ(db.execute("SELECT position FROM keel_events_head")[0].as_int64(0), 1);
}

TEST(PostgresSnapshotStoreTest, SnapshotsAreSharedAndOnlyNewerOnesReplaceThem) {
  const std::string database = new_database();
  PostgresSnapshotStore writer(database);
  PostgresSnapshotStore reader(database);
  EXPECT_FALSE(reader.load("account-1").has_value());
  writer.save("account-1", {.version = 20, .state = R"({"balance":240})"});
  writer.save("account-1", {.version = 10, .state = R"({"balance":100})"});  // older: kept out
  const auto snapshot = reader.load("account-1");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 20U);
  EXPECT_EQ(snapshot->state, R"({"balance":240})");
}

TEST(PostgresCheckpointStoreTest, CheckpointsAreSharedAndSurviveReconnecting) {
  const std::string database = new_database();
  {
    PostgresCheckpointStore checkpoints(database);
    EXPECT_EQ(checkpoints.load("outbox"), 0U);
    checkpoints.save("outbox", 41);
    checkpoints.save("outbox", 42);
  }
  PostgresCheckpointStore reconnected(database);
  EXPECT_EQ(reconnected.load("outbox"), 42U);
  EXPECT_EQ(reconnected.load("other"), 0U);
}

// A read model in SQL: the balance of each account, from its Deposited events.
class BalancesTable final : public PostgresReadModel {
 public:
  std::string name() const override { return "balances"; }
  void create(Transaction& tx) override {
    tx.execute("CREATE TABLE IF NOT EXISTS balances (account text PRIMARY KEY, amount bigint)");
  }
  void update(Transaction& tx, const cqrs::RecordedEvent& event) override {
    if (event.type == "Poison") throw std::runtime_error("cannot project this event");
    if (event.type != "Deposited") return;
    tx.execute(
        "INSERT INTO balances (account, amount) VALUES ($1, ($2::json->>'amount')::bigint) "
        "ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount",
        {event.stream, event.data});
  }
  void clear(Transaction& tx) override { tx.execute("DELETE FROM balances"); }
};

using Balances = std::map<std::string, std::int64_t>;

Balances balances_in(const std::string& database) {
  Connection db(database);
  Balances balances;
  for (const Row& row : db.execute("SELECT account, amount FROM balances")) {
    balances[row.as_text(0)] = row.as_int64(1);
  }
  return balances;
}

std::vector<NewEvent> deposit(int amount) {
  return {event("Deposited", fmt::format(R"({{"amount":{}}})", amount))};
}

TEST(PostgresReadModelTest, AnInlineReadModelChangesInTheAppendsTransactionAndCatchesUp) {
  const std::string database = new_database();
  PostgresEventStore running(database);
  PostgresEventStore other(database);  // another process, without the read model
  running.append("account-1", ExpectedVersion::any(), deposit(10));
  BalancesTable balances;
  running.add_inline_read_model(balances);
  EXPECT_EQ(balances_in(database), (Balances{{"account-1", 10}}));
  running.append("account-1", ExpectedVersion::any(), deposit(5));
  EXPECT_EQ(balances_in(database), (Balances{{"account-1", 15}}));
  other.append("account-2", ExpectedVersion::any(), deposit(4));
  running.append("account-3", ExpectedVersion::any(), deposit(1));
  EXPECT_EQ(balances_in(database),
            (Balances{{"account-1", 15}, {"account-2", 4}, {"account-3", 1}}))
      << "the other writer's event applied by the next append that runs the model";

  EXPECT_THROW(running.append("account-1", ExpectedVersion::any(),
                              std::vector{deposit(1)[0], event("Poison")}),
               std::runtime_error);
  EXPECT_EQ(running.stream_version("account-1"), 2U) << "the failed update failed the append";

  Connection(database).execute("UPDATE balances SET amount = 0");  // a damaged read model
  running.rebuild_inline_read_model(balances);
  EXPECT_EQ(balances_in(database),
            (Balances{{"account-1", 15}, {"account-2", 4}, {"account-3", 1}}));
  BalancesTable not_added;
  EXPECT_THROW(running.rebuild_inline_read_model(not_added), std::invalid_argument);
}

TEST(PostgresReadModelTest, AnAsyncProjectionResumesFromTheCheckpointStoredWithItsReadModel) {
  const std::string database = new_database();
  PostgresEventStore store(database);
  store.append("account-1", ExpectedVersion::any(), deposit(10));
  BalancesTable balances;
  {
    PostgresProjection projection(database, balances);
    cqrs::ProjectionRunner runner(store, projection);
    runner.start();
    store.append("account-1", ExpectedVersion::any(), deposit(5));
    EXPECT_EQ(balances_in(database), (Balances{{"account-1", 15}}));
    projection.apply(store.read_all()[1]);  // delivered twice: ignored
    EXPECT_EQ(balances_in(database), (Balances{{"account-1", 15}}));
  }
  store.append("account-2", ExpectedVersion::any(), deposit(1));
  PostgresProjection projection(database, balances);
  cqrs::ProjectionRunner runner(store, projection);
  runner.start();
  EXPECT_EQ(runner.metrics().applied, 1U) << "resumed after the stored checkpoint";
  runner.rebuild();
  EXPECT_EQ(balances_in(database), (Balances{{"account-1", 15}, {"account-2", 1}}));
  EXPECT_EQ(projection.checkpoint(), 3U);
}

}  // namespace
}  // namespace keel::postgres
