// RateLimitStore against a real redis-server (tests/support): the Store conformance suite, the
// in-process limiters as an oracle, and what only Redis has (scripts, keys, TTLs, failures).
#include "keel/redis/rate_limit_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/store_conformance.h"
#include "tests/support/free_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::redis {
namespace {

using ratelimit::Algorithm;
using ratelimit::Decision;
using ratelimit::Limit;
using ratelimit::testing::StoreConformanceTest;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RedisServer;
using testing::shared_redis_server;

// Tests share the server and ManualClocks all start at the same wall time: each store gets
// its own key prefix so that no test sees another's state.
std::string unique_prefix() {
  static std::atomic<int> next{0};
  return "keel:rl:t" + std::to_string(next.fetch_add(1)) + ":";
}

RateLimitStoreOptions options_for(const RedisServer& server, TimeSource time_source) {
  RateLimitStoreOptions options;
  options.connection.host = server.host();
  options.connection.port = server.port();
  options.key_prefix = unique_prefix();
  options.time_source = time_source;
  return options;
}

std::unique_ptr<ratelimit::Store> make_clock_store(ManualClock& clock) {
  return std::make_unique<RateLimitStore>(options_for(shared_redis_server(), TimeSource::clock),
                                          clock);
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformanceTest,
                         ::testing::Values(ratelimit::testing::StoreCase{"redis",
                                                                         make_clock_store}),
                         ratelimit::testing::store_case_name);

// A plain hiredis connection, to look at (and break) what the store does.
class RedisClient {
 public:
  explicit RedisClient(const RedisServer& server)
      : context_(redisConnectWithTimeout(server.host().c_str(), server.port(), {5, 0})) {
    if (context_ == nullptr || context_->err != 0) {
      throw std::runtime_error("cannot connect to redis-server");
    }
  }
  ~RedisClient() { redisFree(context_); }
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // The reply as an integer (integer replies) or text (others; "(nil)" for nil).
  std::string text(const std::vector<std::string>& args) {
    redisReply* reply = command(args);
    std::string result;
    if (reply->type == REDIS_REPLY_INTEGER) {
      result = std::to_string(reply->integer);
    } else if (reply->type == REDIS_REPLY_NIL) {
      result = "(nil)";
    } else {
      result.assign(reply->str, reply->len);
    }
    freeReplyObject(reply);
    return result;
  }
  long long integer(const std::vector<std::string>& args) { return std::stoll(text(args)); }

 private:
  redisReply* command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    if (reply == nullptr) throw std::runtime_error(context_->errstr);
    return reply;
  }

  redisContext* context_;
};

class RedisRateLimitStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = &shared_redis_server(); }

  RateLimitStoreOptions options(TimeSource time_source = TimeSource::clock) const {
    return options_for(*server_, time_source);
  }
  std::unique_ptr<RateLimitStore> make_store(TimeSource time_source = TimeSource::clock) {
    return std::make_unique<RateLimitStore>(options(time_source), clock_);
  }
  // A store whose server is not there: a loopback port nobody listens on.
  std::unique_ptr<RateLimitStore> make_unreachable_store(FailureMode on_failure) {
    RateLimitStoreOptions unreachable = options();
    unreachable.connection.port = testing::free_loopback_port();
    unreachable.on_failure = on_failure;
    unreachable.failure_retry_after = seconds(5);
    return std::make_unique<RateLimitStore>(unreachable, clock_);
  }

  RedisServer* server_ = nullptr;
  ManualClock clock_;
};

TEST_F(RedisRateLimitStoreTest, EachAlgorithmAllowsItsAmountThenDeniesUntilRetryAfter) {
  const Limit limits[] = {
      Limit::token_bucket(10, 4),
      Limit::gcra(10, 4),
      Limit::leaky_bucket(10, 4),
      Limit::fixed_window(4, seconds(1)),
      Limit::sliding_window_log(4, seconds(1)),
      Limit::sliding_window_counter(4, seconds(1)),
  };
  for (const Limit& limit : limits) {
    SCOPED_TRACE(ratelimit::to_string(limit.algorithm));
    ManualClock clock;
    RateLimitStore store(options(), clock);
    for (std::int64_t left = 3; left >= 0; --left) {
      const Decision d = store.try_acquire("client", limit);
      EXPECT_TRUE(d.allowed);
      EXPECT_EQ(d.limit, 4);
      EXPECT_EQ(d.remaining, left);
      EXPECT_EQ(d.retry_after, Duration::zero());
    }
    const Decision denied = store.try_acquire("client", limit);
    EXPECT_FALSE(denied.allowed);
    EXPECT_EQ(denied.remaining, 0);
    ASSERT_GT(denied.retry_after, Duration::zero());
    clock.advance(denied.retry_after - std::chrono::microseconds(1));
    EXPECT_FALSE(store.try_acquire("client", limit).allowed) << "1 us before retry_after";
    clock.advance(std::chrono::microseconds(1));
    EXPECT_TRUE(store.try_acquire("client", limit).allowed) << "at retry_after";
    EXPECT_EQ(store.metrics().allowed, 5U);
    EXPECT_EQ(store.metrics().denied, 2U);
  }
}

// The in-process limiter is the oracle: the same requests at the same times must get the same
// Decisions, every field. Parameters keep every time a whole number of microseconds.
TEST_F(RedisRateLimitStoreTest, DecidesExactlyLikeTheInProcessLimiters) {
  const Limit limits[] = {
      Limit::token_bucket(10, 5),
      Limit::gcra(20, 3),
      Limit::leaky_bucket(10, 5),
      Limit::fixed_window(5, seconds(1)),
      Limit::sliding_window_log(5, seconds(1)),
      Limit::sliding_window_counter(5, milliseconds(600)),
  };
  for (const Limit& limit : limits) {
    SCOPED_TRACE(ratelimit::to_string(limit.algorithm));
    ManualClock clock;
    RateLimitStore store(options(), clock);
    const auto oracle = ratelimit::make_limiter(limit, clock);
    std::mt19937 random(42);
    for (int step = 0; step < 300; ++step) {
      clock.advance(milliseconds(std::uniform_int_distribution<int>(0, 120)(random)));
      const auto permits = std::uniform_int_distribution<std::int64_t>(1, 6)(random);
      const Decision expected = oracle->try_acquire(permits);
      const Decision actual = store.try_acquire("oracle", limit, permits);
      ASSERT_EQ(actual.allowed, expected.allowed) << "step " << step << ", permits " << permits;
      ASSERT_EQ(actual.limit, expected.limit) << "step " << step;
      ASSERT_EQ(actual.remaining, expected.remaining) << "step " << step;
      ASSERT_EQ(actual.retry_after, expected.retry_after) << "step " << step;
      ASSERT_EQ(actual.reset_after, expected.reset_after) << "step " << step;
    }
    EXPECT_GT(store.metrics().allowed, 25U) << "the sequence exercises both outcomes";
    EXPECT_GT(store.metrics().denied, 25U);
  }
}

// 1/3 s is no whole number of microseconds: the interval stays a double, so the rate holds.
TEST_F(RedisRateLimitStoreTest, RatesWithAFractionalIntervalKeepTheirRate) {
  const auto store = make_store();
  const Limit limit = Limit::token_bucket(3, 3);
  int allowed = 0;
  for (int step = 0; step <= 1000; ++step) {  // 0 .. 10 s, and 5 ms more below
    allowed += store->try_acquire("thirds", limit).allowed ? 1 : 0;
    clock_.advance(milliseconds(step < 1000 ? 10 : 5));
  }
  allowed += store->try_acquire("thirds", limit).allowed ? 1 : 0;
  EXPECT_EQ(allowed, 3 + 30) << "the burst, then 3 per second for 10 s";
}

TEST_F(RedisRateLimitStoreTest, ScriptsAreLoadedOnceAndAgainAfterScriptFlush) {
  const auto store = make_store();
  const Limit limit = Limit::fixed_window(3, seconds(1));
  EXPECT_EQ(store->try_acquire("k", limit).remaining, 2);
  EXPECT_EQ(store->try_acquire("k", limit).remaining, 1);
  EXPECT_EQ(store->metrics().script_loads, 1U);

  RedisClient(*server_).text({"SCRIPT", "FLUSH"});
  const Decision after_flush = store->try_acquire("k", limit);
  EXPECT_TRUE(after_flush.allowed);
  EXPECT_EQ(after_flush.remaining, 0) << "the state survived, only the script was lost";
  EXPECT_EQ(store->metrics().script_loads, 2U) << "NOSCRIPT loads it again";
  EXPECT_EQ(store->metrics().errors, 0U) << "NOSCRIPT is not a failure";
}

TEST_F(RedisRateLimitStoreTest, KeyNamesCarryTheCallersKeyAsHashTag) {
  RateLimitStoreOptions named = options();
  named.key_prefix = "app:rl:";
  const RateLimitStore store(named, clock_);
  EXPECT_EQ(store.redis_key("user-42", Algorithm::token_bucket), "app:rl:{user-42}:tb");
  EXPECT_EQ(store.redis_key("user-42", Algorithm::gcra), "app:rl:{user-42}:gcra");
  EXPECT_EQ(store.redis_key("user-42", Algorithm::leaky_bucket), "app:rl:{user-42}:lb");
  EXPECT_EQ(store.redis_key("user-42", Algorithm::fixed_window), "app:rl:{user-42}:fw");
  EXPECT_EQ(store.redis_key("user-42", Algorithm::sliding_window_log), "app:rl:{user-42}:swl");
  EXPECT_EQ(store.redis_key("user-42", Algorithm::sliding_window_counter), "app:rl:{user-42}:swc");
  EXPECT_EQ(store.redis_key("a{b}%c", Algorithm::token_bucket), "app:rl:{a%7Bb%7D%25c}:tb")
      << "braces would cut the hash tag short; '%' is encoded so that encoding is one-to-one";
  EXPECT_EQ(store.redis_key("}", Algorithm::token_bucket), "app:rl:{%7D}:tb");
}

TEST_F(RedisRateLimitStoreTest, KeysExpireOnceBackToFullAllowance) {
  const auto store = make_store();
  RedisClient redis(*server_);

  // A slow refill (2 tokens in 32 s; 1/16 is exact in binary), so that the key cannot expire
  // in real time before the PTTL below reads it, however slow the machine.
  const Decision bucket = store->try_acquire("ttl", Limit::token_bucket(0.0625, 5), 2);
  EXPECT_EQ(bucket.reset_after, seconds(32));
  const long long bucket_ttl =
      redis.integer({"PTTL", store->redis_key("ttl", Algorithm::token_bucket)});
  EXPECT_GT(bucket_ttl, 0);
  EXPECT_LE(bucket_ttl, 32'000);

  clock_.advance(milliseconds(250));  // window [0, 1 s) has 750 ms left
  store->try_acquire("ttl", Limit::fixed_window(5, seconds(1)));
  const long long window_ttl =
      redis.integer({"PTTL", store->redis_key("ttl", Algorithm::fixed_window)});
  EXPECT_GT(window_ttl, 0);
  EXPECT_LE(window_ttl, 750);

  store->try_acquire("ttl", Limit::sliding_window_counter(5, seconds(1)));
  const long long counter_ttl =
      redis.integer({"PTTL", store->redis_key("ttl", Algorithm::sliding_window_counter)});
  EXPECT_GT(counter_ttl, 750) << "the count still weighs through the next window";
  EXPECT_LE(counter_ttl, 1750);

  store->try_acquire("ttl", Limit::sliding_window_log(5, seconds(1)));
  const std::string log = store->redis_key("ttl", Algorithm::sliding_window_log);
  for (const std::string& key : {log, log + ":sum"}) {
    const long long ttl = redis.integer({"PTTL", key});
    EXPECT_GT(ttl, 0) << key;
    EXPECT_LE(ttl, 1000) << key;
  }

  // A bucket full again after 1 ms: its key goes (Redis expires in real time).
  store->try_acquire("short", Limit::gcra(1000, 1));
  const std::string short_lived = store->redis_key("short", Algorithm::gcra);
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return redis.integer({"EXISTS", short_lived}) == 0;
      },
      seconds(5), milliseconds(5)))
      << short_lived << " still exists";
}

TEST_F(RedisRateLimitStoreTest, ServerTimeModeCountsWithTheServersClock) {
  const auto store = make_store(TimeSource::server);  // clock_ is never advanced nor read
  const Limit log = Limit::sliding_window_log(3, std::chrono::hours(1));
  EXPECT_EQ(store->try_acquire("server", log).remaining, 2);
  EXPECT_EQ(store->try_acquire("server", log).remaining, 1);
  EXPECT_EQ(store->try_acquire("server", log).remaining, 0);
  const Decision denied = store->try_acquire("server", log);
  EXPECT_FALSE(denied.allowed);
  EXPECT_GT(denied.retry_after, std::chrono::minutes(59));
  EXPECT_LE(denied.retry_after, std::chrono::hours(1));

  const Limit bucket = Limit::token_bucket(1.0 / 3600, 2);  // one token an hour
  EXPECT_TRUE(store->try_acquire("server", bucket, 2).allowed);
  const Decision empty = store->try_acquire("server", bucket);
  EXPECT_FALSE(empty.allowed);
  EXPECT_GT(empty.retry_after, std::chrono::minutes(59));
  EXPECT_LE(empty.retry_after, std::chrono::hours(1));
}

TEST_F(RedisRateLimitStoreTest, FailOpenAllowsAndCountsWhenRedisIsUnreachable) {
  const auto store = make_unreachable_store(FailureMode::fail_open);
  const Decision d = store->try_acquire("k", Limit::token_bucket(10, 5));
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, 5);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.retry_after, Duration::zero());
  EXPECT_TRUE(store->try_acquire("k", Limit::token_bucket(10, 5)).allowed);
  const RateLimitStoreMetrics m = store->metrics();
  EXPECT_EQ(m.errors, 2U);
  EXPECT_EQ(m.failed_open, 2U);
  EXPECT_EQ(m.failed_closed, 0U);
  EXPECT_EQ(m.allowed, 0U) << "allowed counts Redis' decisions only";
}

TEST_F(RedisRateLimitStoreTest, FailClosedDeniesWithTheConfiguredRetryAfter) {
  const auto store = make_unreachable_store(FailureMode::fail_closed);
  const Decision d = store->try_acquire("k", Limit::fixed_window(3, seconds(1)));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.limit, 3);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_EQ(d.retry_after, seconds(5));
  EXPECT_EQ(d.reset_after, seconds(5));
  const RateLimitStoreMetrics m = store->metrics();
  EXPECT_EQ(m.errors, 1U);
  EXPECT_EQ(m.failed_closed, 1U);
  EXPECT_EQ(m.denied, 0U);
}

TEST_F(RedisRateLimitStoreTest, AServerThatStopsMakesFailuresNotExceptions) {
  auto own_server = RedisServer::start();
  RateLimitStoreOptions own = options();
  own.connection.host = own_server->host();
  own.connection.port = own_server->port();
  own.on_failure = FailureMode::fail_closed;
  RateLimitStore store(own, clock_);
  const Limit limit = Limit::token_bucket(10, 5);
  EXPECT_TRUE(store.try_acquire("k", limit).allowed);

  own_server.reset();  // stops redis-server; the store holds a connection to it
  const Decision d = store.try_acquire("k", limit);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, own.failure_retry_after);
  EXPECT_GE(store.metrics().errors, 1U);
  EXPECT_EQ(store.metrics().failed_closed, 1U);
  EXPECT_FALSE(store.try_acquire("k", limit).allowed) << "and keeps failing closed";
  EXPECT_EQ(store.metrics().failed_closed, 2U);
}

TEST_F(RedisRateLimitStoreTest, AConnectionTheServerClosedIsReplacedTransparently) {
  const auto store = make_store();
  const Limit limit = Limit::fixed_window(5, seconds(1));
  EXPECT_EQ(store->try_acquire("k", limit).remaining, 4);

  RedisClient redis(*server_);
  EXPECT_GE(redis.integer({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}), 1);
  const Decision d = store->try_acquire("k", limit);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 3) << "the command was sent again on a new connection, once";
  const RateLimitStoreMetrics m = store->metrics();
  EXPECT_EQ(m.errors, 1U) << "the failed exchange is still counted";
  EXPECT_EQ(m.failed_open + m.failed_closed, 0U);
}

TEST_F(RedisRateLimitStoreTest, AuthenticatesAndSelectsTheDatabase) {
  const auto own_server = RedisServer::start();  // its own: the password would lock others out
  RedisClient(*own_server).text({"CONFIG", "SET", "requirepass", "s3cret"});
  RateLimitStoreOptions own = options();
  own.connection.host = own_server->host();
  own.connection.port = own_server->port();
  own.connection.database = 3;
  const Limit limit = Limit::fixed_window(5, seconds(1));

  own.connection.password = "wrong";
  RateLimitStore refused(own, clock_);
  EXPECT_FALSE(refused.try_acquire("k", limit).allowed);
  EXPECT_EQ(refused.metrics().failed_closed, 1U) << "a refused AUTH is a failure";

  own.connection.password = "s3cret";
  RateLimitStore store(own, clock_);
  EXPECT_EQ(store.try_acquire("k", limit).remaining, 4);
  EXPECT_EQ(store.metrics().errors, 0U);
  RedisClient redis(*own_server);
  redis.text({"AUTH", "s3cret"});
  const std::string key = store.redis_key("k", Algorithm::fixed_window);
  EXPECT_EQ(redis.integer({"EXISTS", key}), 0) << "not in database 0";
  redis.text({"SELECT", "3"});
  EXPECT_EQ(redis.integer({"EXISTS", key}), 1);
}

TEST_F(RedisRateLimitStoreTest, InvalidRequestsThrowEvenWhenRedisIsDown) {
  const auto store = make_unreachable_store(FailureMode::fail_open);
  const Limit limit = Limit::token_bucket(10, 5);
  EXPECT_THROW(store->try_acquire("", limit), std::invalid_argument);
  EXPECT_THROW(store->try_acquire("k", limit, 0), std::invalid_argument);
  EXPECT_THROW(store->try_acquire("k", limit, -3), std::invalid_argument);
  Limit broken = limit;
  broken.amount = 0;
  EXPECT_THROW(store->try_acquire("k", broken), std::invalid_argument);
  EXPECT_THROW(store->try_acquire("k", Limit::fixed_window(5, std::chrono::nanoseconds(1500))),
               std::invalid_argument)
      << "windows are whole microseconds in Redis";
  EXPECT_EQ(store->metrics().errors, 0U) << "nothing was sent";
}

TEST_F(RedisRateLimitStoreTest, InvalidOptionsThrow) {
  auto with = [&](auto change) {
    RateLimitStoreOptions changed = options();
    change(changed);
    return changed;
  };
  auto build = [&](const RateLimitStoreOptions& o) { RateLimitStore store(o, clock_); };
  EXPECT_THROW(build(with([](auto& o) { o.key_prefix = "rl:{shard}:"; })), std::invalid_argument);
  EXPECT_THROW(build(with([](auto& o) { o.failure_retry_after = Duration::zero(); })),
               std::invalid_argument);
  EXPECT_THROW(build(with([](auto& o) { o.connection.pool_size = 0; })), std::invalid_argument);
  EXPECT_THROW(build(with([](auto& o) { o.connection.host = ""; })), std::invalid_argument);
  EXPECT_THROW(build(with([](auto& o) { o.connection.port = 0; })), std::invalid_argument);
  EXPECT_THROW(build(with([](auto& o) { o.connection.command_timeout = Duration::zero(); })),
               std::invalid_argument);
  EXPECT_NO_THROW(build(options()));
}

TEST_F(RedisRateLimitStoreTest, StoresOnTheSameKeysShareOneCount) {
  const RateLimitStoreOptions shared = options();
  RateLimitStore node_a(shared, clock_);
  RateLimitStore node_b(shared, clock_);
  const Limit limit = Limit::gcra(10, 4);
  EXPECT_EQ(node_a.try_acquire("k", limit, 2).remaining, 2);
  EXPECT_EQ(node_b.try_acquire("k", limit).remaining, 1);
  EXPECT_EQ(node_a.try_acquire("k", limit).remaining, 0);
  EXPECT_FALSE(node_b.try_acquire("k", limit).allowed);
}

TEST_F(RedisRateLimitStoreTest, SlidingWindowLogHoldsAtMostLimitEntries) {
  const auto store = make_store();
  const Limit limit = Limit::sliding_window_log(5, seconds(1));
  RedisClient redis(*server_);
  const std::string log = store->redis_key("log", Algorithm::sliding_window_log);

  EXPECT_TRUE(store->try_acquire("log", limit, 2).allowed);
  EXPECT_TRUE(store->try_acquire("log", limit).allowed);
  EXPECT_EQ(redis.integer({"ZCARD", log}), 1) << "requests at one instant share an entry";
  EXPECT_EQ(redis.text({"GET", log + ":sum"}), "3");

  for (int i = 0; i < 100; ++i) {
    clock_.advance(milliseconds(70));
    store->try_acquire("log", limit);
    ASSERT_LE(redis.integer({"ZCARD", log}), 5) << "step " << i;
  }
  clock_.advance(seconds(1));
  EXPECT_EQ(store->try_acquire("log", limit).remaining, 4) << "old entries left the window";
  EXPECT_EQ(redis.integer({"ZCARD", log}), 1);
}

TEST_F(RedisRateLimitStoreTest, RegisterMetricsExposesTheCounters) {
  auto store = make_store();
  MetricsRegistry registry;
  const Subscription subscription = store->register_metrics(registry, "api");
  const Limit limit = Limit::fixed_window(1, seconds(1));
  store->try_acquire("k", limit);
  store->try_acquire("k", limit);
  const std::string page = registry.render();
  EXPECT_THAT(page, ::testing::HasSubstr(
                        R"(keel_ratelimit_decisions_total{limiter="api",outcome="allowed"} 1)"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        R"(keel_ratelimit_decisions_total{limiter="api",outcome="denied"} 1)"));
  EXPECT_THAT(page,
              ::testing::HasSubstr(
                  R"(keel_ratelimit_store_failures_total{limiter="api",mode="fail_open"} 0)"));
  EXPECT_THAT(page, ::testing::HasSubstr(R"(keel_redis_errors_total{limiter="api"} 0)"));
  EXPECT_THAT(page, ::testing::HasSubstr(R"(keel_redis_script_loads_total{limiter="api"} 1)"));
}

}  // namespace
}  // namespace keel::redis
