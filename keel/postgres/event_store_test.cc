// PostgresEventStore against a private PostgreSQL (tests/support): the EventStore conformance
// suite on a fresh database per test, plus what only the server shows (schema creation by
// processes starting together, events from another writer). Two writing processes at once:
// tests/integration/event_store_postgres_writers_test.cc.
#include "keel/postgres/event_store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/scheduler.h"
#include "keel/cqrs/event_poller.h"
#include "keel/cqrs/event_store_conformance.h"
#include "keel/cqrs/upcasting.h"
#include "keel/postgres/connection.h"
#include "tests/support/postgres_server.h"
#include "tests/support/wait.h"

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

TEST(PostgresEventStoreTest, ABatchTooLargeForOneStatementIsWrittenWholeOrNotAtAll) {
  // libpq sends at most 65,535 parameters with a statement; an event takes 8.
  const std::string database = new_database();
  PostgresEventStore store(database);
  constexpr std::size_t kBatch = 20'000;
  std::vector<NewEvent> batch;
  batch.reserve(kBatch);
  for (std::size_t i = 0; i < kBatch; ++i) {
    batch.push_back(event("Deposited", fmt::format(R"({{"n":{}}})", i)));
  }
  EXPECT_EQ(store.append("big", ExpectedVersion::no_stream(), batch),
            (cqrs::AppendResult{.version = kBatch, .position = kBatch}));
  const std::vector<cqrs::RecordedEvent> stored = store.read_stream("big");
  ASSERT_EQ(stored.size(), kBatch);
  EXPECT_EQ(positions_of(stored), one_to(kBatch));
  EXPECT_EQ(stored.back().version, kBatch);
  EXPECT_EQ(stored.back().data, fmt::format(R"({{"n":{}}})", kBatch - 1));

  // The server refuses one event in the 18th statement of the next batch: none of it stays.
  Connection db(database);
  db.execute(R"sql(
    CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.type = 'Refused' THEN RAISE EXCEPTION 'refused by a trigger'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse BEFORE INSERT ON keel_events FOR EACH ROW EXECUTE FUNCTION refuse();
  )sql");
  batch[17'500] = event("Refused");
  EXPECT_THROW(store.append("other", ExpectedVersion::no_stream(), batch), Error);
  EXPECT_EQ(store.stream_version("other"), 0U) << "the statements before it rolled back too";
  EXPECT_EQ(store.read_all(kBatch).size(), 0U);
  EXPECT_EQ(db.execute("SELECT position FROM keel_events_head")[0].as_int64(0),
            static_cast<std::int64_t>(kBatch));
  EXPECT_EQ(store.append("other", ExpectedVersion::no_stream(), one("A")).position, kBatch + 1);
}

TEST(PostgresEventStoreTest, AppendsKeepTheirRulesWhenTheServerDefaultsToRepeatableRead) {
  const std::string database = new_database();
  Connection(database).execute(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = "
      "''repeatable read''', current_database()); END $$");
  ASSERT_EQ(Connection(database).execute("SHOW default_transaction_isolation")[0].as_text(0),
            "repeatable read");
  // Appends that wait for the head row while another commits: in REPEATABLE READ each would
  // fail with a serialization error; the store sets READ COMMITTED itself.
  constexpr int kThreads = 4;
  constexpr int kAppends = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      try {
        PostgresEventStore store(database);
        for (int i = 0; i < kAppends; ++i) store.append("shared", ExpectedVersion::any(), one("E"));
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  PostgresEventStore store(database);
  EXPECT_EQ(positions_of(store.read_all()), one_to(kThreads * kAppends));
  EXPECT_EQ(store.stream_version("shared"), static_cast<std::uint64_t>(kThreads * kAppends));
}

// A read model with several tables, named after `suffix`, for creation races.
class ManyTables final : public PostgresReadModel {
 public:
  explicit ManyTables(std::string suffix) : suffix_(std::move(suffix)) {}
  std::string name() const override { return fmt::format("many_{}", suffix_); }
  void create(Transaction& tx) override {
    for (int i = 0; i < 3; ++i) {
      tx.execute(fmt::format("CREATE TABLE IF NOT EXISTS t{}_{} (k text PRIMARY KEY, v bigint)", i,
                             suffix_));
    }
  }
  void update(Transaction&, const cqrs::RecordedEvent&) override {}
  void clear(Transaction&) override {}

 private:
  std::string suffix_;
};

TEST(PostgresReadModelTest, ProcessesCreatingTheSameReadModelTablesAtOnceDoNotFail) {
  // Without a lock, two CREATE TABLE IF NOT EXISTS at once may both find the table missing and
  // one then fails with a unique violation on pg_type.
  const std::string database = new_database();
  constexpr int kRounds = 6;
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  for (int round = 0; round < kRounds; ++round) {
    ManyTables model(fmt::format("r{}", round));
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          ++ready;
          while (ready < kThreads) std::this_thread::yield();  // start together
          if (t % 2 == 0) {
            PostgresProjection projection(database, model);
          } else {
            PostgresEventStore store(database);
            store.add_inline_read_model(model);
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << "round " << round << ": " << e.what();
          ++failures;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(Connection(database)
                .execute("SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]_r[0-9]+$'")[0]
                .as_int64(0),
            3 * kRounds);
}

// Version 1 wrote deposits as "MoneyAdded" {"value": n}; the read model knows "Deposited".
TEST(PostgresReadModelTest, AnInlineReadModelSeesOldEventsUpcast) {
  const std::string database = new_database();
  PostgresEventStore store(database);
  store.append("account-1", ExpectedVersion::any(),
               std::vector{event("MoneyAdded", R"({"value":10})")});
  cqrs::Upcasters upcasters;
  upcasters.add("MoneyAdded", "Deposited", [](boost::json::value& data) {
    data = {{"amount", data.at("value")}};
  });
  BalancesTable balances;
  store.add_inline_read_model(balances, &upcasters);
  store.append("account-1", ExpectedVersion::any(), deposit(2));
  EXPECT_EQ(balances_in(database), (Balances{{"account-1", 12}}));
}

// Events of another process (here: another store on the database) reach this one's
// subscriptions through the poller, woken by NOTIFY.
class PostgresLiveEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    subscription_ = here_.subscribe_all(0, [this](const cqrs::RecordedEvent& e) {
      std::lock_guard lock(mutex_);
      seen_.push_back(e.position);
    });
  }

  bool saw(std::size_t count) {
    std::lock_guard lock(mutex_);
    return seen_.size() >= count;
  }

  std::vector<std::uint64_t> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  static constexpr auto kBound = std::chrono::seconds(20);  // a loaded machine, not the norm

  const std::string database_ = new_database();
  PostgresEventStore here_{database_};
  PostgresEventStore elsewhere_{database_};
  ThreadPoolScheduler scheduler_{1};
  std::mutex mutex_;
  std::vector<std::uint64_t> seen_;  // GUARDED_BY(mutex_)
  Subscription subscription_;
};

TEST_F(PostgresLiveEventsTest, AnAppendElsewhereWakesThePollerThroughNotify) {
  // The timer would take an hour: only the notification can bring the events in time.
  cqrs::EventPoller poller(scheduler_, here_, {.interval = std::chrono::hours(1)});
  AppendListener listener(database_, [&poller] { poller.wake(); });
  ASSERT_TRUE(keel::testing::wait_until([&] { return listener.listening(); }, kBound));

  elsewhere_.append("account-1", ExpectedVersion::any(), deposit(1));
  ASSERT_TRUE(keel::testing::wait_until([&] { return saw(1); }, kBound));
  elsewhere_.append("account-2", ExpectedVersion::any(), std::vector{deposit(2)[0], deposit(3)[0]});
  ASSERT_TRUE(keel::testing::wait_until([&] { return saw(3); }, kBound));
  EXPECT_EQ(seen(), one_to(3)) << "in order, once each";
  EXPECT_GE(listener.metrics().notifications, 2U);
}

TEST_F(PostgresLiveEventsTest, TheListenerListensAgainAfterItsConnectionIsKilled) {
  cqrs::EventPoller poller(scheduler_, here_, {.interval = std::chrono::hours(1)});
  AppendListener listener(database_, [&poller] { poller.wake(); },
                          {.reconnect_after = std::chrono::milliseconds(20)});
  ASSERT_TRUE(keel::testing::wait_until([&] { return listener.listening(); }, kBound));
  Connection admin(database_);
  const auto killed = [&] {
    return admin
               .execute(
                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND query LIKE 'LISTEN%'")[0]
               .as_int64(0) > 0;
  };
  ASSERT_TRUE(keel::testing::wait_until(killed, kBound)) << "found the listening session";
  ASSERT_TRUE(keel::testing::wait_until(
      [&] { return listener.metrics().connection_failures >= 1 && listener.listening(); }, kBound));

  elsewhere_.append("account-1", ExpectedVersion::any(), deposit(1));
  ASSERT_TRUE(keel::testing::wait_until([&] { return saw(1); }, kBound));
}

TEST_F(PostgresLiveEventsTest, WithoutNotificationsThePollerStillBringsTheEvents) {
  cqrs::EventPoller poller(scheduler_, here_, {.interval = std::chrono::milliseconds(20)});
  elsewhere_.append("account-1", ExpectedVersion::any(), deposit(1));
  ASSERT_TRUE(keel::testing::wait_until([&] { return saw(1); }, kBound));
  EXPECT_GE(poller.metrics().polls, 1U);
}

TEST(AppendListenerTest, BadArgumentsThrowInvalidArgument) {
  EXPECT_THROW(AppendListener("host=127.0.0.1", {}), std::invalid_argument);
  EXPECT_THROW(AppendListener("host=127.0.0.1", [] {}, {.reconnect_after = Duration::zero()}),
               std::invalid_argument);
}

}  // namespace
}  // namespace keel::postgres
