// RateLimitStore under concurrency: many threads (more than pooled connections) on one key never
// get more than the limit, also while the server closes connections under them. Runs under
// ThreadSanitizer in CI.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/clock.h"
#include "keel/ratelimit/limit.h"
#include "keel/redis/rate_limit_store.h"
#include "tests/support/redis_server.h"

namespace keel::redis {
namespace {

using ratelimit::Limit;
using std::chrono::hours;
using std::chrono::seconds;

constexpr int kThreads = 8;
constexpr int kAttemptsPerThread = 40;
constexpr std::int64_t kLimit = 100;  // < kThreads * kAttemptsPerThread

class RedisRateLimitStoreConcurrencyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      server_ = testing::RedisServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start redis-server: " << start_error_;
  }

  static RateLimitStoreOptions options(const std::string& prefix) {
    RateLimitStoreOptions o;
    o.connection.host = server_->host();
    o.connection.port = server_->port();
    o.connection.pool_size = 3;  // fewer than the threads: callers wait for connections
    o.key_prefix = prefix;
    o.time_source = TimeSource::clock;
    o.on_failure = FailureMode::fail_closed;
    return o;
  }

  // Runs kThreads x kAttemptsPerThread single-permit requests on one key; returns the admitted.
  static std::int64_t hammer(RateLimitStore& store, const Limit& limit) {
    std::atomic<std::int64_t> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kAttemptsPerThread; ++i) {
          if (store.try_acquire("shared", limit).allowed) admitted.fetch_add(1);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    return admitted.load();
  }

  static inline std::unique_ptr<testing::RedisServer> server_;
  static inline std::string start_error_;
};

// The ManualClock never moves: buckets do not refill and windows do not slide, so exactly the
// limit passes.
TEST_F(RedisRateLimitStoreConcurrencyTest, ThreadsOnOneKeyGetExactlyTheLimit) {
  const Limit limits[] = {
      Limit::token_bucket(1, kLimit),
      Limit::gcra(1, kLimit),
      Limit::leaky_bucket(1, kLimit),
      Limit::fixed_window(kLimit, hours(1)),
      Limit::sliding_window_log(kLimit, hours(1)),
      Limit::sliding_window_counter(kLimit, hours(1)),
  };
  ManualClock clock;
  for (const Limit& limit : limits) {
    SCOPED_TRACE(ratelimit::to_string(limit.algorithm));
    RateLimitStore store(options("keel:rl:exact:"), clock);
    EXPECT_EQ(hammer(store, limit), kLimit);
    const RateLimitStoreMetrics m = store.metrics();
    EXPECT_EQ(m.allowed, static_cast<std::uint64_t>(kLimit));
    EXPECT_EQ(m.allowed + m.denied, static_cast<std::uint64_t>(kThreads * kAttemptsPerThread));
    EXPECT_EQ(m.errors, 0U);
    EXPECT_EQ(m.script_loads, 1U) << "concurrent first calls load the script once";
  }
}

// CLIENT KILL closes the store's connections while requests are in flight: some decisions fail
// (closed), some are retried, none admits beyond the limit.
TEST_F(RedisRateLimitStoreConcurrencyTest, ConnectionsClosedUnderLoadNeverAdmitMoreThanTheLimit) {
  ManualClock clock;
  RateLimitStore store(options("keel:rl:killed:"), clock);
  const Limit limit = Limit::fixed_window(kLimit, hours(1));

  std::atomic<bool> done{false};
  std::thread killer([&] {
    redisContext* context =
        redisConnectWithTimeout(server_->host().c_str(), server_->port(), timeval{5, 0});
    if (context == nullptr || context->err != 0) {
      if (context != nullptr) redisFree(context);
      ADD_FAILURE() << "killer cannot connect";
      return;
    }
    while (!done.load()) {
      auto* reply =
          static_cast<redisReply*>(redisCommand(context, "CLIENT KILL TYPE normal SKIPME yes"));
      if (reply != nullptr) freeReplyObject(reply);
      std::this_thread::yield();
    }
    redisFree(context);
  });
  const std::int64_t admitted = hammer(store, limit);
  done.store(true);
  killer.join();

  EXPECT_LE(admitted, kLimit);
  const RateLimitStoreMetrics m = store.metrics();
  EXPECT_EQ(m.allowed, static_cast<std::uint64_t>(admitted));
  EXPECT_EQ(m.allowed + m.denied + m.failed_closed,
            static_cast<std::uint64_t>(kThreads * kAttemptsPerThread));
  EXPECT_GE(m.errors, m.failed_closed);
}

}  // namespace
}  // namespace keel::redis
