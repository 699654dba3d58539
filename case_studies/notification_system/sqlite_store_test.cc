// The store conformance suite on SQLite files.
#include "case_studies/notification_system/sqlite_store.h"

#include "case_studies/notification_system/store_conformance.h"
#include "keel/sqlite/database.h"
#include "tests/support/temp_dir.h"

namespace keel::notifier::testing {
namespace {

class SqliteEnvironment final : public StoreEnvironment {
 public:
  std::unique_ptr<NotificationStore> open(QueueRules rules) override {
    return std::make_unique<SqliteNotificationStore>((dir_.path() / "notifier.db").string(),
                                                     SqliteStoreOptions{.rules = rules});
  }

 private:
  keel::testing::TempDir dir_{"keel-notifier-store"};
};

std::unique_ptr<StoreEnvironment> make_sqlite() { return std::make_unique<SqliteEnvironment>(); }

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(StoreKind{"file", &make_sqlite}), store_name);

using namespace std::chrono_literals;

// The deliveries table as the first release created it (no cancel_requested, no
// lease_expiries), with one delivery in it.
void write_first_release_file(const std::string& path, WallTime at) {
  sqlite::Database db(path);
  db.execute(R"sql(
CREATE TABLE notifications (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, priority INTEGER NOT NULL,
  category TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, template TEXT NOT NULL,
  send_at INTEGER, idempotency_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY,
  notification_id TEXT NOT NULL REFERENCES notifications (id), created_at INTEGER NOT NULL);
CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
  notification_id TEXT NOT NULL REFERENCES notifications (id), channel TEXT NOT NULL,
  pool INTEGER NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '', due_at INTEGER NOT NULL, sort_key INTEGER NOT NULL,
  lease_token TEXT, lease_until INTEGER, updated_at INTEGER NOT NULL);
)sql");
  const std::int64_t ms = to_millis(at);
  db.execute(fmt::format(
      "INSERT INTO notifications VALUES ('ntf_old', 'u1', 2, 'billing', 's', 'b', '', NULL, '', "
      "'f', {0}); INSERT INTO deliveries (id, notification_id, channel, pool, priority, status, "
      "due_at, sort_key, updated_at) VALUES ('dlv_old', 'ntf_old', 'email', 1, 2, 'queued', {0}, "
      "{0}, {0}); INSERT INTO idempotency_keys VALUES ('order-1', 'ntf_old', {0})",
      ms));
}

// A keyed notification of `user` created at `at`.
Notification keyed(std::string user, std::string key, WallTime at) {
  Notification n;
  n.id = new_notification_id();
  n.user_id = std::move(user);
  n.category = "billing";
  n.fingerprint = "f";
  n.idempotency_key = std::move(key);
  n.created_at = at;
  return n;
}

TEST(SqliteStoreTest, AFileFromTheFirstReleaseIsMigratedAndKeepsItsDeliveries) {
  keel::testing::TempDir dir{"keel-notifier-migrate"};
  const std::string path = (dir.path() / "old.db").string();
  const WallTime t0{std::chrono::seconds(1767225600)};
  write_first_release_file(path, t0);
  SqliteNotificationStore store(path);
  const std::vector<Claim> c = store.claim(Pool::standard, t0, 30s, 10, 5);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].delivery.id, "dlv_old");
  ASSERT_EQ(store.begin_send("dlv_old", c[0].lease_token, t0, 30s), 1);
  store.cancel("ntf_old", t0 + 1s);
  EXPECT_EQ(store.complete("dlv_old", c[0].lease_token,
                           {.status = DeliveryStatus::retrying, .error = "503", .due_at = t0 + 2s},
                           t0 + 1s),
            DeliveryStatus::cancelled)
      << "the migrated table records the cancel request";
  // Opening it again (already migrated) changes nothing.
  SqliteNotificationStore again(path);
  EXPECT_EQ(again.find("ntf_old")->deliveries.at(0).status, DeliveryStatus::cancelled);
  // The old global key now belongs to the user of its notification.
  const InsertResult same_user = again.insert(keyed("u1", "order-1", t0 + 1h), t0 - 23h);
  EXPECT_FALSE(same_user.created);
  EXPECT_EQ(same_user.notification.id, "ntf_old");
  EXPECT_TRUE(again.insert(keyed("u2", "order-1", t0 + 1h), t0 - 23h).created);
}

TEST(SqliteStoreTest, AnUnreadablePreferencesDocumentDoesNotBlockClaims) {
  keel::testing::TempDir dir{"keel-notifier-bad-prefs"};
  const std::string path = (dir.path() / "n.db").string();
  const WallTime t0{std::chrono::seconds(1767225600)};
  SqliteNotificationStore store(path);
  for (const char* user : {"u1", "u2"}) {
    Notification n = keyed(user, "", t0);
    n.deliveries.push_back({.id = new_delivery_id(), .notification_id = n.id, .due_at = t0});
    ASSERT_TRUE(store.insert(n, t0 - 24h).created);
  }
  sqlite::Database file(path);
  file.execute("INSERT INTO preferences (user_id, document) VALUES ('u1', 'not json')");
  EXPECT_EQ(store.claim(Pool::standard, t0, 30s, 10, 5).size(), 2u)
      << "one user's broken document must not stop the pool";
}

TEST(SqliteStoreTest, ExpiredIdempotencyKeysArePurgedAFewAtATime) {
  keel::testing::TempDir dir{"keel-notifier-purge"};
  const std::string path = (dir.path() / "n.db").string();
  const WallTime t0{std::chrono::seconds(1767225600)};
  SqliteNotificationStore store(path);
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(store.insert(keyed("u1", fmt::format("k{}", i), t0), t0 - 24h).created);
  }
  sqlite::Database file(path);
  const auto keys = [&] {
    sqlite::Statement count = file.prepare("SELECT COUNT(*) FROM user_idempotency_keys");
    count.step();
    return count.column_int64(0);
  };
  EXPECT_EQ(keys(), 150);
  // A day later, each insert (keyed or not) forgets at most 100 expired keys.
  store.insert(keyed("u2", "", t0 + 25h), t0 + 1h);
  EXPECT_EQ(keys(), 50);
  store.insert(keyed("u2", "fresh", t0 + 25h), t0 + 1h);
  EXPECT_EQ(keys(), 1) << "only the fresh key is left";
}

}  // namespace
}  // namespace keel::notifier::testing
