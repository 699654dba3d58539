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

TEST(PostgresStoreTest, ASaturatedStandardSideCannotBlockACriticalDelivery) {
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
  ASSERT_TRUE(store.insert(one(Priority::critical, now), now - 24h).created);

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
        return observer.execute("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")[0].as_int64(
                   0) >= 2;
      },
      10s);

  // A password reset: claimed, sent and completed while the standard side is stuck.
  auto critical = std::async(std::launch::async, [&]() -> std::optional<DeliveryStatus> {
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

}  // namespace
}  // namespace keel::notifier::testing
