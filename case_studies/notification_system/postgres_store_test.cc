// The store conformance suite on a real PostgreSQL server (tests/support), one database per test.
#include "case_studies/notification_system/postgres_store.h"

#include <atomic>
#include <future>

#include "case_studies/notification_system/store_conformance.h"
#include "keel/postgres/connection.h"
#include "tests/support/postgres_server.h"
#include "tests/support/wait.h"

namespace keel::notifier::testing {
namespace {

keel::testing::PostgresServer& server() {
  static const std::unique_ptr<keel::testing::PostgresServer> instance =
      keel::testing::PostgresServer::start();
  return *instance;
}

class PostgresEnvironment final : public StoreEnvironment {
 public:
  PostgresEnvironment() {
    static std::atomic<int> next{0};
    connection_string_ = server().create_database(fmt::format("notifier_{}", next.fetch_add(1)));
  }
  std::unique_ptr<NotificationStore> open(QueueRules rules) override {
    return std::make_unique<PostgresNotificationStore>(
        connection_string_,
        PostgresStoreOptions{.connections = 2,
                             .critical_connections = 1,
                             .rules = rules,
                             // The suite drives lease expiry with the `now` it passes.
                             .lease_clock = LeaseClock::caller});
  }

 private:
  std::string connection_string_;
};

std::unique_ptr<StoreEnvironment> make_postgres() {
  return std::make_unique<PostgresEnvironment>();
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest,
                         ::testing::Values(StoreKind{"server", &make_postgres}), store_name);

using namespace std::chrono_literals;

std::string fresh_database() {
  static std::atomic<int> next{0};
  return server().create_database(fmt::format("notifier_pg_{}", next.fetch_add(1)));
}

// One notification for user u1 on email, due at `due`.
Notification one(Priority priority, WallTime due) {
  Notification n;
  n.id = new_notification_id();
  n.user_id = "u1";
  n.priority = priority;
  n.category = "security";
  n.subject = "Reset";
  n.body = "Your code";
  n.fingerprint = "f";
  n.created_at = due;
  Delivery d;
  d.id = new_delivery_id();
  d.notification_id = n.id;
  d.due_at = due;
  d.updated_at = due;
  n.deliveries.push_back(d);
  return n;
}

TEST(PostgresStoreTest, ASaturatedStandardSideCannotBlockACriticalNotification) {
  const std::string database = fresh_database();
  PostgresNotificationStore store(database, {.connections = 3, .critical_connections = 1});
  const WallTime now = SteadyClock().wall_now();
  // A failed standard delivery, the row the standard callers will wait on.
  ASSERT_TRUE(store.insert(one(Priority::low, now), now - 24h).created);
  const std::vector<Claim> low = store.claim(Pool::standard, now, 30s, 10, 5);
  ASSERT_EQ(low.size(), 1u);
  ASSERT_TRUE(store.begin_send(low[0].delivery.id, low[0].lease_token, now, 30s));
  ASSERT_EQ(store.complete(low[0].delivery.id, low[0].lease_token,
                           {.status = DeliveryStatus::failed, .error = "550"}, now),
            DeliveryStatus::failed);

  // Standard work (HTTP handlers, standard workers) stuck in the database: as many callers as
  // there are connections, each waiting for a row lock held elsewhere (a hand retry of that
  // dead letter), which no critical statement touches.
  postgres::Connection blocker(database);
  postgres::Transaction lock = blocker.transaction();
  lock.execute("SELECT 1 FROM deliveries WHERE id = $1 FOR UPDATE", {low[0].delivery.id});
  std::vector<std::thread> stuck;
  for (int i = 0; i < 3; ++i) {
    stuck.emplace_back([&] { store.retry(low[0].delivery.id, now); });
  }
  postgres::Connection observer(database);
  const bool saturated = keel::testing::wait_until(
      [&] {
        return observer.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")[0].as_int64(0) >=
               2;
      },
      10s);

  // A password reset: accepted (intake's reads and insert), claimed, sent and completed while
  // the standard side is stuck.
  auto critical = std::async(std::launch::async, [&]() -> std::optional<DeliveryStatus> {
    store.preferences("u1", Pool::critical);
    store.contacts("u1", Pool::critical);
    if (!store.insert(one(Priority::critical, now), now - 24h).created) return std::nullopt;
    const std::vector<Claim> c = store.claim(Pool::critical, now, 30s, 10, 5);
    if (c.size() != 1) return std::nullopt;
    if (!store.begin_send(c[0].delivery.id, c[0].lease_token, now, 30s)) return std::nullopt;
    return store.complete(c[0].delivery.id, c[0].lease_token,
                          {.status = DeliveryStatus::sent, .provider = "console"}, now);
  });
  const bool done = critical.wait_for(10s) == std::future_status::ready;
  lock.rollback();  // unblocks everything, whatever happened
  for (std::thread& t : stuck) t.join();
  ASSERT_TRUE(saturated) << "the standard callers never got stuck: the test proves nothing";
  EXPECT_TRUE(done) << "a critical delivery waited for connections held by standard work";
  EXPECT_EQ(critical.get(), DeliveryStatus::sent);
}

TEST(PostgresStoreTest, LeasesAreMeasuredOnTheDatabaseClockNotTheNodes) {
  const std::string database = fresh_database();
  PostgresNotificationStore node_a(database, {.connections = 2, .critical_connections = 1});
  PostgresNotificationStore node_b(database, {.connections = 2, .critical_connections = 1});
  const WallTime now = SteadyClock().wall_now();
  // Due long ago, so that both nodes see it due whatever their clocks say.
  const Notification n = one(Priority::normal, now - 3h);
  ASSERT_TRUE(node_a.insert(n, now - 24h).created);
  const std::vector<Claim> a = node_a.claim(Pool::standard, now, 30s, 10, 5);
  ASSERT_EQ(a.size(), 1u);
  // Node B's clock runs an hour ahead: on its own clock A's lease ran out long ago, but the
  // database's clock says it holds, so B must not take the delivery (a double send).
  EXPECT_TRUE(node_b.claim(Pool::standard, now + 1h, 30s, 10, 5).empty());
  // Node A's clock runs an hour behind: its lease still holds when the database says so.
  EXPECT_EQ(node_a.begin_send(a[0].delivery.id, a[0].lease_token, now - 1h, 200ms), 1);
  // The send's lease (200 ms) runs out in real time on the database's clock, then B (an hour
  // behind, this time) takes the delivery over.
  std::vector<Claim> b;
  EXPECT_TRUE(keel::testing::wait_until(
      [&] {
        b = node_b.claim(Pool::standard, now - 1h, 30s, 10, 5);
        return !b.empty();
      },
      10s, 20ms));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].delivery.id, a[0].delivery.id);
}

TEST(PostgresStoreTest, ASchemaFromTheFirstReleaseIsMigrated) {
  const std::string database = fresh_database();
  const WallTime t0 = SteadyClock().wall_now();
  {
    // The tables as the first release created them: global keys, no cancel_requested.
    postgres::Connection old(database);
    old.execute(R"sql(
CREATE TABLE notifications (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, priority INTEGER NOT NULL,
  category TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, template TEXT NOT NULL,
  send_at BIGINT, idempotency_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, notification_id TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE deliveries (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  notification_id TEXT NOT NULL REFERENCES notifications (id), channel TEXT NOT NULL,
  pool INTEGER NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '', due_at BIGINT NOT NULL, sort_key BIGINT NOT NULL,
  lease_token TEXT, lease_until BIGINT, updated_at BIGINT NOT NULL);
)sql");
    const std::int64_t ms = to_millis(t0);
    old.execute(
        "INSERT INTO notifications VALUES ('ntf_old', 'u1', 2, 'billing', 's', 'b', '', NULL, "
        "'order-1', 'f', $1)",
        {ms});
    old.execute(
        "INSERT INTO deliveries (id, notification_id, channel, pool, priority, status, due_at, "
        "sort_key, updated_at) VALUES ('dlv_old', 'ntf_old', 'email', 1, 2, 'queued', $1, $1, $1)",
        {ms});
    old.execute("INSERT INTO idempotency_keys VALUES ('order-1', 'ntf_old', $1)", {ms});
  }
  PostgresNotificationStore store(database, {.connections = 2, .critical_connections = 1});
  const std::vector<Claim> c = store.claim(Pool::standard, t0, 30s, 10, 5);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(store.begin_send("dlv_old", c[0].lease_token, t0, 30s), 1);
  store.cancel("ntf_old", t0);
  EXPECT_EQ(store.complete("dlv_old", c[0].lease_token,
                           {.status = DeliveryStatus::retrying, .error = "503", .due_at = t0}, t0),
            DeliveryStatus::cancelled);
  Notification again = one(Priority::normal, t0);
  again.idempotency_key = "order-1";
  EXPECT_EQ(store.insert(again, t0 - 24h).notification.id, "ntf_old")
      << "the old key belongs to its notification's user";
  Notification other = one(Priority::normal, t0);
  other.user_id = "u2";
  other.idempotency_key = "order-1";
  EXPECT_TRUE(store.insert(other, t0 - 24h).created);
  PostgresNotificationStore reopened(database, {.connections = 2, .critical_connections = 1});
  EXPECT_EQ(reopened.find("ntf_old")->deliveries.at(0).status, DeliveryStatus::cancelled);
}

}  // namespace
}  // namespace keel::notifier::testing
