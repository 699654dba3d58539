// keel/redis across a Redis crash and restart on the same port, under load from four threads:
// the rate-limit store answers every decision while Redis is down, by its FailureMode
// (fail_closed denies with failure_retry_after, fail_open allows), the cache answers misses
// (cache-aside falls through to the source) and drops writes, each counted in metrics(); nothing
// throws; once Redis is back, decisions and cache hits come from Redis again without rebuilding
// anything.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/cache/cache_aside.h"
#include "keel/ratelimit/limit.h"
#include "keel/redis/rate_limit_store.h"
#include "keel/redis/redis_cache.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

class FaultRedisRestartTest : public ::testing::Test {
 protected:
  redis::ConnectionOptions connection() const {
    return {.host = "127.0.0.1", .port = server_->port(), .pool_size = 4};
  }

  std::unique_ptr<RedisServer> server_ = RedisServer::start();
};

TEST_F(FaultRedisRestartTest, RateLimitStoreFollowsItsFailureModeAndRecovers) {
  redis::RateLimitStore closed({.connection = connection(),
                                .key_prefix = "closed:",
                                .on_failure = redis::FailureMode::fail_closed,
                                .failure_retry_after = 250ms});
  redis::RateLimitStore open({.connection = connection(),
                              .key_prefix = "open:",
                              .on_failure = redis::FailureMode::fail_open});
  const auto limit = ratelimit::Limit::token_bucket(1e6, 1'000'000);  // never denies by itself
  std::atomic<bool> stop{false};
  // 0: Redis up, 1: Redis down (set after the crash), 2: restarting (set before the start).
  std::atomic<int> phase{0};
  std::atomic<int> thrown{0};
  std::atomic<int> wrong_while_down{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = fmt::format("user-{}", t);
      while (!stop.load()) {
        try {
          const int before = phase.load();
          const ratelimit::Decision c = closed.try_acquire(key, limit);
          const ratelimit::Decision o = open.try_acquire(key, limit);
          // Made while Redis was down: fail_closed denies with its retry_after, fail_open allows.
          const bool down = before == 1 && phase.load() == 1;
          if (down && (c.allowed || c.retry_after != 250ms || !o.allowed)) ++wrong_while_down;
        } catch (const std::exception&) {
          ++thrown;
        }
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return closed.metrics().allowed >= 200; }, 20s));
  server_->stop(/*crash=*/true);
  phase = 1;
  EXPECT_TRUE(wait_until(
      [&] { return closed.metrics().failed_closed >= 100 && open.metrics().failed_open >= 100; },
      20s))
      << "failed_closed " << closed.metrics().failed_closed << ", failed_open "
      << open.metrics().failed_open;
  phase = 2;
  ASSERT_NO_THROW(server_->start_again());
  const std::uint64_t closed_before = closed.metrics().allowed;
  const std::uint64_t open_before = open.metrics().allowed;
  EXPECT_TRUE(wait_until(
      [&] {
        return closed.metrics().allowed >= closed_before + 200 &&
               open.metrics().allowed >= open_before + 200;
      },
      20s))
      << "decisions did not come from Redis again";
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(thrown.load(), 0) << "a Redis failure must be a decision, not an exception";
  EXPECT_EQ(wrong_while_down.load(), 0) << "a decision without Redis ignored on_failure";
  EXPECT_GT(closed.metrics().errors, 0u);
  EXPECT_GT(open.metrics().errors, 0u);
  std::printf(
      "fail_closed: %lu allowed by Redis, %lu denied without it; fail_open: %lu allowed "
      "without Redis; errors %lu + %lu\n",
      static_cast<unsigned long>(closed.metrics().allowed),
      static_cast<unsigned long>(closed.metrics().failed_closed),
      static_cast<unsigned long>(open.metrics().failed_open),
      static_cast<unsigned long>(closed.metrics().errors),
      static_cast<unsigned long>(open.metrics().errors));
}

TEST_F(FaultRedisRestartTest, CacheAsideFallsThroughToTheSourceAndRecovers) {
  redis::RedisCache<std::string, std::string> redis_cache(
      {.connection = connection(), .key_prefix = "users:", .default_ttl = 60s});
  std::atomic<std::uint64_t> loads{0};
  cache::CacheAside<std::string, std::string> users(
      redis_cache, [&](const std::string& key) -> std::optional<std::string> {
        ++loads;
        return fmt::format("value of {}", key);
      });
  std::atomic<bool> stop{false};
  std::atomic<int> thrown{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = fmt::format("u{}", (t * 7 + i) % 50);
        try {
          if (users.get(key) != fmt::format("value of {}", key)) ++wrong;
        } catch (const std::exception&) {
          ++thrown;
        }
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return redis_cache.stats().hits >= 500; }, 20s));
  server_->stop(/*crash=*/true);
  const std::uint64_t loads_before = loads.load();
  EXPECT_TRUE(wait_until(
      [&] { return redis_cache.metrics().read_errors >= 100 && loads >= loads_before + 100; }, 20s))
      << "read errors " << redis_cache.metrics().read_errors << ", loads "
      << loads.load() - loads_before;
  ASSERT_NO_THROW(server_->start_again());
  const std::uint64_t hits_before = redis_cache.stats().hits;
  EXPECT_TRUE(wait_until([&] { return redis_cache.stats().hits >= hits_before + 500; }, 20s))
      << "the cache did not serve hits from Redis again";
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(thrown.load(), 0) << "a Redis failure must be a miss, not an exception";
  EXPECT_EQ(wrong.load(), 0) << "a lookup answered a wrong value";
  EXPECT_GT(redis_cache.metrics().write_errors, 0u) << "puts while Redis was down are counted";
  std::printf("cache: %lu hits, %lu loads from the source, %lu read errors, %lu write errors\n",
              static_cast<unsigned long>(redis_cache.stats().hits),
              static_cast<unsigned long>(loads.load()),
              static_cast<unsigned long>(redis_cache.metrics().read_errors),
              static_cast<unsigned long>(redis_cache.metrics().write_errors));
}

}  // namespace
}  // namespace keel::testing
