#include "keel/ratelimit/keyed_rate_limiter.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "keel/ratelimit/token_bucket.h"

namespace keel::ratelimit {
namespace {

using std::chrono::seconds;

TEST(KeyedRateLimiterTest, EachKeyHasItsOwnLimiter) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::token_bucket(1, 2), {}, clock);
  EXPECT_TRUE(limiter.allow("alice"));
  EXPECT_TRUE(limiter.allow("alice"));
  EXPECT_FALSE(limiter.allow("alice"));
  EXPECT_TRUE(limiter.allow("bob"));
  EXPECT_EQ(limiter.size(), 2U);
  const KeyedMetrics m = limiter.metrics();
  EXPECT_EQ(m.allowed, 3U);
  EXPECT_EQ(m.denied, 1U);
  EXPECT_EQ(m.keys, 2U);
}

TEST(KeyedRateLimiterTest, DropsIdleKeysBeforeBusyOnes) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::fixed_window(1, seconds(10)), {.max_keys = 2, .shards = 1},
                           clock);
  ASSERT_TRUE(limiter.allow("busy"));  // its window is used up
  ASSERT_TRUE(limiter.allow("idle"));
  clock.advance(seconds(10));           // both windows over: both full again
  ASSERT_TRUE(limiter.allow("busy"));   // busy is used again, idle is still full
  ASSERT_TRUE(limiter.allow("third"));  // over the bound: idle goes, not busy
  EXPECT_EQ(limiter.size(), 2U);
  EXPECT_FALSE(limiter.allow("busy")) << "busy's state was kept";
  const KeyedMetrics m = limiter.metrics();
  EXPECT_EQ(m.idle_dropped, 1U);
  EXPECT_EQ(m.evicted, 0U);
}

TEST(KeyedRateLimiterTest, EvictsTheLeastRecentlyUsedWhenNoneIsIdleAndCountsIt) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::fixed_window(1, seconds(10)), {.max_keys = 2, .shards = 1},
                           clock);
  ASSERT_TRUE(limiter.allow("a"));
  ASSERT_TRUE(limiter.allow("b"));
  EXPECT_FALSE(limiter.allow("a"));  // a is now the most recent
  ASSERT_TRUE(limiter.allow("c"));   // b is least recent and not idle: evicted
  EXPECT_EQ(limiter.metrics().evicted, 1U);
  EXPECT_FALSE(limiter.allow("a")) << "a was kept";
  EXPECT_TRUE(limiter.allow("b")) << "b starts full again: the cost of an eviction";
}

TEST(KeyedRateLimiterTest, MemoryStaysWithinMaxKeys) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::gcra(1, 1), {.max_keys = 1000, .shards = 8}, clock);
  for (int i = 0; i < 50'000; ++i) limiter.allow(fmt::format("{}", i));
  EXPECT_LE(limiter.size(), 1000U);
  EXPECT_GE(limiter.size(), 900U);
  const KeyedMetrics m = limiter.metrics();
  EXPECT_EQ(m.evicted + m.idle_dropped + m.keys, 50'000U);
}

TEST(KeyedRateLimiterTest, PurgeIdleAndEraseForgetKeys) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::token_bucket(1, 1), {}, clock);
  limiter.allow("a");
  limiter.allow("b");
  EXPECT_EQ(limiter.purge_idle(), 0U);
  clock.advance(seconds(1));
  limiter.allow("c");
  EXPECT_EQ(limiter.purge_idle(), 2U);
  EXPECT_EQ(limiter.size(), 1U);
  EXPECT_TRUE(limiter.erase("c"));
  EXPECT_FALSE(limiter.erase("c"));
  EXPECT_EQ(limiter.size(), 0U);
}

TEST(KeyedRateLimiterTest, AFactoryCanGiveKeysDifferentLimits) {
  ManualClock clock;
  int made = 0;
  KeyedRateLimiter limiter([&](std::string_view key) -> std::unique_ptr<RateLimiter> {
    ++made;
    const std::int64_t burst = key.starts_with("premium:") ? 10 : 2;
    return std::make_unique<TokenBucket>(1, burst, clock);
  });
  EXPECT_TRUE(limiter.try_acquire("premium:acme", 10).allowed);
  EXPECT_FALSE(limiter.try_acquire("free:bob", 3).allowed);
  EXPECT_TRUE(limiter.try_acquire("free:bob", 2).allowed);
  EXPECT_EQ(made, 2);
}

TEST(KeyedRateLimiterTest, RejectsInvalidInput) {
  EXPECT_THROW(KeyedRateLimiter(KeyedRateLimiter::Factory{}), std::invalid_argument);
  EXPECT_THROW(KeyedRateLimiter(Limit::token_bucket(1, 1), {.max_keys = 0}), std::invalid_argument);
  Limit broken = Limit::fixed_window(1, seconds(1));
  broken.window = Duration::zero();
  EXPECT_THROW(KeyedRateLimiter{broken}, std::invalid_argument);
  KeyedRateLimiter limiter(Limit::token_bucket(1, 1));
  EXPECT_THROW(limiter.try_acquire("k", 0), std::invalid_argument);
  EXPECT_EQ(limiter.size(), 0U) << "a rejected call creates no key";
}

TEST(KeyedRateLimiterTest, RegistersItsMetrics) {
  ManualClock clock;
  MetricsRegistry registry;
  KeyedRateLimiter limiter(Limit::token_bucket(1, 1), {}, clock);
  Subscription metrics = limiter.register_metrics(registry, "api");
  limiter.allow("k");
  limiter.allow("k");
  const std::string text = registry.render();
  EXPECT_NE(text.find(R"(keel_ratelimit_decisions_total{limiter="api",outcome="allowed"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(keel_ratelimit_decisions_total{limiter="api",outcome="denied"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(keel_ratelimit_keys{limiter="api"} 1)"), std::string::npos) << text;
  metrics.unsubscribe();
  EXPECT_EQ(registry.render().find("keel_ratelimit_keys{"), std::string::npos);
}

}  // namespace
}  // namespace keel::ratelimit
