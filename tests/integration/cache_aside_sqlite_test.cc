// Cache-aside as an application uses it on the embedded default: a users table in a real SQLite
// database file, an in-process LruCache in front, get_user / update_user.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "keel/cache/lru_cache.h"
#include "keel/core/clock.h"
#include "keel/sqlite/database.h"
#include "tests/integration/user_repository.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// users in SQLite. One connection shared by the threads of the process, so every use is under
// the table's mutex (sqlite::Database is one connection: one thread at a time).
class SqliteUserTable final : public UserTable {
 public:
  explicit SqliteUserTable(sqlite::Database& db) : db_(with_schema(db)) {}

  void insert(const User& user) {
    std::lock_guard lock(mutex_);
    sqlite::Statement insert = db_.prepare("INSERT INTO users (id, name, email) VALUES (?, ?, ?)");
    insert.bind_int64(1, user.id).bind_text(2, user.name).bind_text(3, user.email);
    insert.step();
  }

  std::optional<User> find(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    find_.reset();
    find_.bind_int64(1, id);
    if (!find_.step()) return std::nullopt;
    User user{
        .id = find_.column_int64(0), .name = find_.column_text(1), .email = find_.column_text(2)};
    find_.reset();  // a statement left on a row keeps its read open
    return user;
  }

  bool update(std::int64_t id, const UserData& data) override {
    std::lock_guard lock(mutex_);
    update_.reset();
    update_.bind_text(1, data.name).bind_text(2, data.email).bind_int64(3, id);
    update_.step();
    return db_.changes() == 1;
  }

 private:
  static sqlite::Database& with_schema(sqlite::Database& db) {
    db.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)");
    return db;
  }

  sqlite::Database& db_;
  std::mutex mutex_;
  // Prepared once, run many times.
  sqlite::Statement find_ = db_.prepare("SELECT id, name, email FROM users WHERE id = ?");
  sqlite::Statement update_ = db_.prepare("UPDATE users SET name = ?, email = ? WHERE id = ?");
};

class CacheAsideSqliteTest : public ::testing::Test {
 protected:
  CacheAsideSqliteTest() {
    table_.insert({.id = 1, .name = "Ada", .email = "ada@example.com"});
    table_.insert({.id = 2, .name = "Grace", .email = "grace@example.com"});
  }

  TempDir dir_{"keel-cache-sqlite"};
  sqlite::Database db_{(dir_.path() / "users.db").string()};
  SqliteUserTable table_{db_};
  ManualClock clock_;
  cache::LruCache<std::int64_t, User> cache_{1000, {.default_ttl = minutes(5)}, clock_};
  UserRepository users_{table_, cache_};
};

TEST_F(CacheAsideSqliteTest, ReadsAfterTheFirstAreServedFromTheCache) {
  const User ada{.id = 1, .name = "Ada", .email = "ada@example.com"};
  EXPECT_EQ(users_.get_user(1), ada);
  EXPECT_EQ(users_.get_user(1), ada);
  EXPECT_EQ(users_.get_user(1), ada);

  EXPECT_EQ(users_.source_reads(), 1u) << "only the first read reached SQLite";
  EXPECT_EQ(cache_.stats().hits, 2u);
}

TEST_F(CacheAsideSqliteTest, UpdateIsVisibleOnTheNextRead) {
  ASSERT_EQ(users_.get_user(1)->name, "Ada");
  ASSERT_TRUE(users_.update_user(1, {.name = "Ada Lovelace", .email = "ada@lovelace.org"}));

  EXPECT_EQ(users_.get_user(1),
            (User{.id = 1, .name = "Ada Lovelace", .email = "ada@lovelace.org"}));
  EXPECT_EQ(users_.source_reads(), 2u) << "the update invalidated the cached copy";
  EXPECT_EQ(users_.get_user(2)->name, "Grace") << "other users' entries are untouched";
  EXPECT_FALSE(users_.update_user(99, {.name = "nobody", .email = ""}));
}

TEST_F(CacheAsideSqliteTest, WriteBehindTheRepositorysBackIsSeenOnceTheTtlRunsOut) {
  ASSERT_EQ(users_.get_user(1)->name, "Ada");
  db_.execute("UPDATE users SET name = 'Countess' WHERE id = 1");  // not through update_user

  EXPECT_EQ(users_.get_user(1)->name, "Ada") << "cached for its ttl";
  clock_.advance(minutes(5) + seconds(1));
  EXPECT_EQ(users_.get_user(1)->name, "Countess") << "the ttl bounds how stale a copy can be";
}

TEST_F(CacheAsideSqliteTest, MissingUserIsNotFoundAndNotCachedAsAUser) {
  EXPECT_EQ(users_.get_user(42), std::nullopt);
  EXPECT_EQ(users_.get_user(42), std::nullopt);
  EXPECT_EQ(users_.source_reads(), 2u) << "without negative caching each miss asks SQLite";

  cache::LruCache<std::int64_t, User> cache(1000, {}, clock_);
  UserRepository negative(table_, cache, {.negative_ttl = seconds(30)}, clock_);
  EXPECT_EQ(negative.get_user(42), std::nullopt);
  EXPECT_EQ(negative.get_user(42), std::nullopt);
  EXPECT_EQ(negative.source_reads(), 1u) << "\"not found\" is cached for negative_ttl";
}

}  // namespace
}  // namespace keel::testing
