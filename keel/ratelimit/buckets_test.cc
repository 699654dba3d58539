// TokenBucket, Gcra and LeakyBucket on a ManualClock.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "keel/ratelimit/gcra.h"
#include "keel/ratelimit/leaky_bucket.h"
#include "keel/ratelimit/token_bucket.h"

namespace keel::ratelimit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TokenBucketTest, TheReadmeExampleWorksAsWritten) {
  ManualClock clock;
  TokenBucket limiter(10, 50, clock);
  int processed = 0, rejected = 0;
  for (int i = 0; i < 60; ++i) {
    if (limiter.allow()) {
      ++processed;
    } else {
      ++rejected;
    }
  }
  EXPECT_EQ(processed, 50);
  EXPECT_EQ(rejected, 10);
}

TEST(TokenBucketTest, StartsFullAndRefillsContinuously) {
  ManualClock clock;
  TokenBucket bucket(4, 2, clock);  // one token per 250 ms
  EXPECT_DOUBLE_EQ(bucket.available(), 2.0);
  EXPECT_TRUE(bucket.is_full());
  EXPECT_TRUE(bucket.try_acquire(2).allowed);
  EXPECT_FALSE(bucket.is_full());
  clock.advance(milliseconds(125));
  EXPECT_DOUBLE_EQ(bucket.available(), 0.5) << "fractional tokens count";
  clock.advance(milliseconds(125));
  EXPECT_TRUE(bucket.allow());
  clock.advance(seconds(60));
  EXPECT_DOUBLE_EQ(bucket.available(), 2.0) << "never above capacity";
}

TEST(TokenBucketTest, DeniedRequestTakesNothing) {
  ManualClock clock;
  TokenBucket bucket(1, 3, clock);
  ASSERT_TRUE(bucket.try_acquire(2).allowed);
  const Decision denied = bucket.try_acquire(2);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.remaining, 1);
  EXPECT_EQ(denied.retry_after, seconds(1));
  EXPECT_EQ(denied.reset_after, seconds(2));
  EXPECT_DOUBLE_EQ(bucket.available(), 1.0);
  EXPECT_TRUE(bucket.try_acquire(1).allowed);
}

TEST(TokenBucketTest, MorePermitsThanCapacityCanNeverPass) {
  ManualClock clock;
  TokenBucket bucket(100, 10, clock);
  const Decision d = bucket.try_acquire(11);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, Duration::max());
  EXPECT_EQ(d.remaining, 10);
  EXPECT_TRUE(bucket.try_acquire(std::numeric_limits<std::int64_t>::max()).retry_after ==
              Duration::max());
}

TEST(TokenBucketTest, InvalidArgumentsNameTheValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double rate : {0.0, -1.0, nan, inf, 2e9}) {
    EXPECT_THROW(TokenBucket(rate, 10), std::invalid_argument) << rate;
  }
  EXPECT_THROW(TokenBucket(1, 0), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1, -5), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1e-9, 1'000'000), std::invalid_argument);  // centuries to refill
  try {
    const TokenBucket bucket(-2.5, 10);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("rate_per_second"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("-2.5"), std::string::npos) << e.what();
  }
  TokenBucket bucket(1, 1);
  EXPECT_THROW(bucket.try_acquire(0), std::invalid_argument);
  EXPECT_THROW(bucket.try_acquire(-3), std::invalid_argument);
  EXPECT_THROW(bucket.reserve(0), std::invalid_argument);
  EXPECT_THROW(bucket.set_rate(nan), std::invalid_argument);
  EXPECT_THROW(bucket.set_capacity(0), std::invalid_argument);
}

TEST(TokenBucketTest, IsHeldThroughTheInterface) {
  ManualClock clock;
  std::unique_ptr<RateLimiter> limiter = std::make_unique<TokenBucket>(1, 1, clock);
  EXPECT_TRUE(limiter->allow());
  EXPECT_FALSE(limiter->allow());
  EXPECT_EQ(limiter->metrics().allowed, 1U);
  EXPECT_EQ(limiter->metrics().denied, 1U);
}

// GCRA must agree with the token bucket on every sequence: random sizes, random gaps.
TEST(GcraTest, AgreesWithTheTokenBucketOnRandomTraffic) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const double rate = std::uniform_real_distribution<double>(0.5, 2000)(rng);
    const std::int64_t burst = std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
    ManualClock clock;
    TokenBucket bucket(rate, burst, clock);
    Gcra gcra(rate, burst, clock);
    std::uniform_int_distribution<std::int64_t> permits(1, burst + 2);
    std::exponential_distribution<double> gap_seconds(2.0 * rate);  // twice as fast as allowed
    for (int i = 0; i < 400; ++i) {
      clock.advance(
          std::chrono::duration_cast<Duration>(std::chrono::duration<double>(gap_seconds(rng))));
      const std::int64_t n = permits(rng);
      const Decision a = bucket.try_acquire(n);
      const Decision b = gcra.try_acquire(n);
      ASSERT_EQ(a.allowed, b.allowed) << "trial " << trial << " request " << i;
      ASSERT_EQ(a.remaining, b.remaining);
      ASSERT_EQ(a.retry_after, b.retry_after);
      ASSERT_EQ(a.reset_after, b.reset_after);
    }
  }
}

TEST(GcraTest, KeepsOneTheoreticalArrivalTime) {
  ManualClock clock;
  Gcra gcra(10, 3, clock);
  EXPECT_EQ(gcra.theoretical_arrival_time(), clock.now());
  ASSERT_TRUE(gcra.try_acquire(2).allowed);
  EXPECT_EQ(gcra.theoretical_arrival_time(), clock.now() + milliseconds(200));
  EXPECT_EQ(gcra.burst(), 3);
  EXPECT_THROW(Gcra(10, 0), std::invalid_argument);
}

TEST(ReservationTest, WaitsOutTheDebtInOrder) {
  ManualClock clock;
  TokenBucket bucket(10, 2, clock);
  std::vector<Duration> delays;
  for (int i = 0; i < 5; ++i) {
    Reservation r = bucket.reserve();
    ASSERT_TRUE(r.ok());
    delays.push_back(r.delay());
  }
  EXPECT_EQ(delays, (std::vector<Duration>{Duration::zero(), Duration::zero(), milliseconds(100),
                                           milliseconds(200), milliseconds(300)}));
  EXPECT_DOUBLE_EQ(bucket.available(), -3.0) << "the bucket is in debt";
  EXPECT_FALSE(bucket.try_acquire().allowed);
  EXPECT_EQ(bucket.try_acquire().retry_after, milliseconds(400));
}

TEST(ReservationTest, RefusedWithoutChangingStateWhenTooBigOrTooLong) {
  ManualClock clock;
  Gcra gcra(10, 2, clock);
  EXPECT_FALSE(gcra.reserve(3).ok()) << "more than the burst";
  EXPECT_EQ(gcra.reserve(3).delay(), Duration::max());
  ASSERT_TRUE(gcra.reserve(2).ok());
  Reservation too_long = gcra.reserve(1, milliseconds(50));
  EXPECT_FALSE(too_long);
  EXPECT_FALSE(too_long.cancel());
  Reservation fits = gcra.reserve(1, milliseconds(100));
  EXPECT_TRUE(fits);
  EXPECT_EQ(fits.delay(), milliseconds(100));
}

TEST(ReservationTest, CancelBeforeItsTimeGivesTheTokensBack) {
  ManualClock clock;
  TokenBucket bucket(10, 2, clock);
  ASSERT_TRUE(bucket.reserve(2).ok());
  Reservation later = bucket.reserve(2);
  ASSERT_EQ(later.delay(), milliseconds(200));
  clock.advance(milliseconds(100));
  EXPECT_TRUE(later.cancel());
  EXPECT_FALSE(later.cancel()) << "only once";
  EXPECT_DOUBLE_EQ(bucket.available(), 1.0);

  Reservation used = bucket.reserve(1);
  clock.advance(used.delay());
  EXPECT_FALSE(used.cancel()) << "its time has come: the tokens were spent";
}

TEST(ReservationTest, CancelNeverFillsAboveCapacity) {
  ManualClock clock;
  Gcra gcra(10, 4, clock);
  Reservation r = gcra.reserve(3);
  ASSERT_EQ(r.delay(), Duration::zero());
  // time_to_act is now: nothing to give back.
  EXPECT_FALSE(r.cancel());
  Reservation debt = gcra.reserve(3);  // 1 left: waits 200 ms
  ASSERT_EQ(debt.delay(), milliseconds(200));
  clock.advance(milliseconds(150));
  EXPECT_TRUE(debt.cancel());
  EXPECT_NEAR(gcra.available(), 2.5, 1e-9);
  Reservation moved = gcra.reserve(1);
  Reservation target = std::move(moved);
  EXPECT_FALSE(moved.ok());  // NOLINT(bugprone-use-after-move): moved-from is refused
  EXPECT_TRUE(target.ok());
}

TEST(TokenBucketTest, SetRateAdvancesAtTheOldRateFirst) {
  ManualClock clock;
  TokenBucket bucket(1, 10, clock);
  ASSERT_TRUE(bucket.try_acquire(10).allowed);
  clock.advance(seconds(2));  // 2 tokens at the old rate
  bucket.set_rate(10);
  EXPECT_NEAR(bucket.available(), 2.0, 1e-9);
  EXPECT_DOUBLE_EQ(bucket.rate(), 10.0);
  clock.advance(milliseconds(300));  // 3 more at the new rate
  EXPECT_NEAR(bucket.available(), 5.0, 1e-9);
  bucket.set_rate(0.5);
  EXPECT_NEAR(bucket.available(), 5.0, 1e-9);
  EXPECT_EQ(bucket.try_acquire(6).retry_after, seconds(2));
}

TEST(TokenBucketTest, SetRateKeepsTheDebtOfReservations) {
  ManualClock clock;
  TokenBucket bucket(10, 1, clock);
  ASSERT_TRUE(bucket.reserve(1).ok());
  ASSERT_EQ(bucket.reserve(1).delay(), milliseconds(100));  // one token of debt
  bucket.set_rate(1);
  EXPECT_NEAR(bucket.available(), -1.0, 1e-9);
  EXPECT_EQ(bucket.try_acquire().retry_after, seconds(2));
}

TEST(TokenBucketTest, ManyChangesWrapTheParameterGeneration) {
  ManualClock clock;
  TokenBucket bucket(1, 100, clock);
  ASSERT_TRUE(bucket.try_acquire(100).allowed);
  for (int i = 1; i <= 40; ++i) {  // 16 generations, wrapped twice and a half
    bucket.set_rate(i % 2 == 0 ? 1 : 2);
    clock.advance(seconds(1));
  }
  // 20 seconds at 2/s and 20 at 1/s (each second runs at the rate set just before it).
  EXPECT_NEAR(bucket.available(), 60.0, 1e-6);
  EXPECT_DOUBLE_EQ(bucket.rate(), 1.0);
}

// Regression: debt built by reservations, scaled by a much slower rate, overflowed the 60-bit
// time field, wrapped, and the bucket came back full.
TEST(TokenBucketTest, SlowingTheRateNeverTurnsHugeDebtIntoAFullBucket) {
  ManualClock clock;
  const double rate = 1e9 / static_cast<double>(std::int64_t{1} << 40);  // 2^40 ns per token
  TokenBucket bucket(rate, 1024, clock);
  int reserved = 0;
  while (bucket.reserve(1024).ok() && reserved < 200) ++reserved;
  ASSERT_GT(reserved, 100) << "deep in debt";
  bucket.set_rate(rate / 16);
  EXPECT_LT(bucket.available(), 0.0);
  EXPECT_FALSE(bucket.try_acquire().allowed);
}

TEST(TokenBucketTest, ShrinkingCapacityDropsTokensAboveIt) {
  ManualClock clock;
  TokenBucket bucket(1, 10, clock);
  bucket.set_capacity(4);
  EXPECT_EQ(bucket.capacity(), 4);
  EXPECT_DOUBLE_EQ(bucket.available(), 4.0);
  EXPECT_FALSE(bucket.try_acquire(5).allowed);
  bucket.set_capacity(8);
  EXPECT_DOUBLE_EQ(bucket.available(), 4.0) << "growing adds no tokens";
  clock.advance(seconds(10));
  EXPECT_DOUBLE_EQ(bucket.available(), 8.0);
  EXPECT_TRUE(bucket.try_acquire(8).allowed);
}

TEST(GcraTest, SetBurstKeepsTheTokens) {
  ManualClock clock;
  Gcra gcra(1, 10, clock);
  ASSERT_TRUE(gcra.try_acquire(7).allowed);  // 3 left
  gcra.set_burst(5);
  EXPECT_NEAR(gcra.available(), 3.0, 1e-9);
  EXPECT_EQ(gcra.try_acquire(3).remaining, 0);
  clock.advance(seconds(100));
  EXPECT_TRUE(gcra.is_full());
  EXPECT_EQ(gcra.try_acquire(1).remaining, 4);
}

TEST(LeakyBucketTest, AdmitsWhatFitsAndDrains) {
  ManualClock clock;
  LeakyBucket bucket(2, 4, clock);  // one permit leaks every 500 ms
  EXPECT_TRUE(bucket.is_full()) << "an empty bucket is the full allowance";
  EXPECT_TRUE(bucket.try_acquire(3).allowed);
  EXPECT_DOUBLE_EQ(bucket.level(), 3.0);
  const Decision denied = bucket.try_acquire(2);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.remaining, 1);
  EXPECT_EQ(denied.retry_after, milliseconds(500));
  EXPECT_EQ(denied.reset_after, milliseconds(1500));
  clock.advance(milliseconds(750));
  EXPECT_DOUBLE_EQ(bucket.level(), 1.5);
  EXPECT_TRUE(bucket.try_acquire(2).allowed);
  EXPECT_EQ(bucket.try_acquire(5).retry_after, Duration::max());
  clock.advance(seconds(5));
  EXPECT_TRUE(bucket.is_full());
  EXPECT_THROW(LeakyBucket(0, 1), std::invalid_argument);
  EXPECT_THROW(LeakyBucket(1, 0), std::invalid_argument);
  EXPECT_THROW(bucket.try_acquire(0), std::invalid_argument);
}

TEST(LeakyBucketTest, ReserveShapesABurstIntoAConstantRate) {
  ManualClock clock;
  LeakyBucket shaper(10, 5, clock);
  std::vector<Duration> departures;
  for (int i = 0; i < 6; ++i) {
    if (auto delay = shaper.reserve()) departures.push_back(*delay);
  }
  EXPECT_EQ(departures,
            (std::vector<Duration>{Duration::zero(), milliseconds(100), milliseconds(200),
                                   milliseconds(300), milliseconds(400)}))
      << "a burst of 6 leaves one per 100 ms; the sixth does not fit";
  clock.advance(milliseconds(100));
  const auto next = shaper.reserve();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, milliseconds(400)) << "after the four still queued";
  EXPECT_EQ(shaper.metrics().allowed, 6U);
  EXPECT_EQ(shaper.metrics().denied, 1U);
}

}  // namespace
}  // namespace keel::ratelimit
