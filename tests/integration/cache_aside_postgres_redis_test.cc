// Cache-aside as a service of several nodes uses it: users in a real PostgreSQL, Redis as the
// shared cache (alone, or as L2 behind each node's in-process L1), get_user / update_user.
// The executable starts its own PostgreSQL and redis-server; PostgreSQL costs about a second to
// start, so the cases are few, each a whole story.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "keel/cache/lru_cache.h"
#include "keel/postgres/connection.h"
#include "keel/redis/redis_cache.h"
#include "keel/redis/two_tier_cache.h"
#include "tests/integration/user_repository.h"
#include "tests/support/free_port.h"
#include "tests/support/postgres_server.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using UserRedisCache =
    redis::RedisCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec>;
using UserTwoTierCache =
    redis::TwoTierCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec>;

// users in PostgreSQL, on the node's own connection (guarded: one thread at a time).
class PostgresUserTable final : public UserTable {
 public:
  explicit PostgresUserTable(const std::string& connection_string) : db_(connection_string) {}

  std::optional<User> find(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    const postgres::Result rows =
        db_.execute("SELECT id, name, email FROM users WHERE id = $1", {id});
    if (rows.empty()) return std::nullopt;
    const postgres::Row row = rows[0];
    return User{.id = row.as_int64(0), .name = row.as_text(1), .email = row.as_text(2)};
  }

  bool update(std::int64_t id, const UserData& data) override {
    std::lock_guard lock(mutex_);
    return db_.execute("UPDATE users SET name = $1, email = $2 WHERE id = $3",
                       {data.name, data.email, id})
               .affected_rows() == 1;
  }

 private:
  std::mutex mutex_;
  postgres::Connection db_;
};

class CacheAsidePostgresRedisTest : public ::testing::Test {
 protected:
  // One PostgreSQL and one Redis for the executable; a failed start fails every test.
  static void SetUpTestSuite() {
    try {
      postgres_ = PostgresServer::start();
      redis_ = RedisServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() {
    postgres_.reset();
    redis_.reset();
  }

  // Each test has its own database and key prefix.
  void SetUp() override {
    if (postgres_ == nullptr || redis_ == nullptr) FAIL() << "could not start: " << start_error_;
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    database_ = postgres_->create_database(name);
    postgres::Connection db(database_);
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)");
    db.execute(
        "INSERT INTO users VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', "
        "'grace@example.com')");
    cache_options_.connection.host = redis_->host();
    cache_options_.connection.port = redis_->port();
    cache_options_.key_prefix = "app:" + name + ":user:";
    cache_options_.default_ttl = minutes(5);
  }

  static inline std::unique_ptr<PostgresServer> postgres_;
  static inline std::unique_ptr<RedisServer> redis_;
  static inline std::string start_error_;
  std::string database_;
  redis::RedisCacheOptions cache_options_;
};

TEST_F(CacheAsidePostgresRedisTest, RedisServesRepeatedReadsAndUpdatesAreVisibleOnTheNextRead) {
  PostgresUserTable table(database_);
  UserRedisCache cache(cache_options_);
  UserRepository users(table, cache);

  const User ada{.id = 1, .name = "Ada", .email = "ada@example.com"};
  EXPECT_EQ(users.get_user(1), ada);
  EXPECT_EQ(users.get_user(1), ada);
  EXPECT_EQ(users.get_user(1), ada);
  EXPECT_EQ(users.source_reads(), 1u) << "only the first read reached PostgreSQL";
  EXPECT_EQ(cache.stats().hits, 2u);

  ASSERT_TRUE(users.update_user(1, {.name = "Ada Lovelace", .email = "ada@lovelace.org"}));
  EXPECT_EQ(users.get_user(1),
            (User{.id = 1, .name = "Ada Lovelace", .email = "ada@lovelace.org"}));
  EXPECT_EQ(users.source_reads(), 2u);

  // Another node (its own connection and cache object) reads the copy in Redis.
  PostgresUserTable other_table(database_);
  UserRedisCache other_cache(cache_options_);
  UserRepository other_node(other_table, other_cache);
  EXPECT_EQ(other_node.get_user(1)->name, "Ada Lovelace");
  EXPECT_EQ(other_node.source_reads(), 0u);
}

// A node of the service: its own database connection, L1 and connections to Redis.
struct Node {
  Node(const std::string& database, const redis::RedisCacheOptions& options)
      : table(database),
        l1(1000, {.default_ttl = seconds(30)}),
        l2(options),
        cache(l1, l2),
        users(table, cache) {}

  PostgresUserTable table;
  cache::LruCache<std::int64_t, User> l1;
  UserRedisCache l2;
  UserTwoTierCache cache;
  UserRepository users;
};

TEST_F(CacheAsidePostgresRedisTest, UpdateOnOneNodeReachesTheOtherNodesInProcessCache) {
  Node a(database_, cache_options_);
  Node b(database_, cache_options_);
  ASSERT_TRUE(
      wait_until([&] { return a.cache.subscribed() && b.cache.subscribed(); }, seconds(10)));

  EXPECT_EQ(a.users.get_user(2)->name, "Grace");  // PostgreSQL, then Redis and A's L1
  EXPECT_EQ(b.users.get_user(2)->name, "Grace");  // Redis, then B's L1
  EXPECT_EQ(a.users.get_user(2)->name, "Grace");  // A's L1
  EXPECT_EQ(a.users.source_reads() + b.users.source_reads(), 1u);
  EXPECT_EQ(a.cache.metrics().l1_hits, 1u);
  EXPECT_EQ(b.cache.metrics().l2_hits, 1u);

  ASSERT_TRUE(b.users.update_user(2, {.name = "Grace Hopper", .email = "grace@navy.mil"}));
  ASSERT_TRUE(wait_until([&] { return !a.l1.get(2).has_value(); }, seconds(10)))
      << "B's invalidation never reached A's in-process cache";
  EXPECT_EQ(a.users.get_user(2)->name, "Grace Hopper");
  EXPECT_EQ(a.users.source_reads() + b.users.source_reads(), 2u);
}

TEST_F(CacheAsidePostgresRedisTest, RedisDownReadsFallThroughToPostgresAndErrorsAreCounted) {
  cache_options_.connection.port = free_loopback_port();  // nothing listens there
  PostgresUserTable table(database_);
  UserRedisCache cache(cache_options_);
  UserRepository users(table, cache);

  EXPECT_EQ(users.get_user(1)->name, "Ada");
  EXPECT_EQ(users.get_user(1)->name, "Ada");
  ASSERT_TRUE(users.update_user(1, {.name = "Ada L.", .email = "ada@example.com"}));
  EXPECT_EQ(users.get_user(1)->name, "Ada L.") << "the service works on, without its cache";

  EXPECT_EQ(users.source_reads(), 3u) << "every read went to PostgreSQL";
  const redis::RedisCacheMetrics errors = cache.metrics();
  // A miss reads the cache twice: before joining a load, and again after registering its own
  // (a load that finished in between has stored its value).
  EXPECT_EQ(errors.read_errors, 6u);
  EXPECT_EQ(errors.write_errors, 4u) << "three fills and one invalidation";
}

}  // namespace
}  // namespace keel::testing
