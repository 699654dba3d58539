// FixedWindow, SlidingWindowLog and SlidingWindowCounter on a ManualClock.
#include <gtest/gtest.h>

#include <random>

#include "keel/ratelimit/fixed_window.h"
#include "keel/ratelimit/sliding_window_counter.h"
#include "keel/ratelimit/sliding_window_log.h"

namespace keel::ratelimit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FixedWindowTest, WindowsAreAlignedToTheClockTimeline) {
  ManualClock clock(TimePoint{} + milliseconds(2300));
  FixedWindow limiter(2, seconds(1), clock);
  const Decision first = limiter.try_acquire();
  EXPECT_EQ(first.reset_after, milliseconds(700)) << "the window is [2 s, 3 s)";
  EXPECT_TRUE(limiter.allow());
  const Decision denied = limiter.try_acquire();
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_after, milliseconds(700));
  clock.advance(milliseconds(700));
  EXPECT_TRUE(limiter.try_acquire(2).allowed);
}

TEST(FixedWindowTest, DeniedRequestsDoNotCount) {
  ManualClock clock;
  FixedWindow limiter(3, seconds(1), clock);
  ASSERT_TRUE(limiter.try_acquire(2).allowed);
  EXPECT_FALSE(limiter.try_acquire(2).allowed);
  EXPECT_FALSE(limiter.try_acquire(2).allowed);
  EXPECT_TRUE(limiter.try_acquire(1).allowed);
  EXPECT_EQ(limiter.try_acquire(4).retry_after, Duration::max());
  EXPECT_EQ(limiter.metrics().denied, 3U);
}

TEST(FixedWindowTest, IsFullWhenTheWindowHasNoCount) {
  ManualClock clock;
  FixedWindow limiter(3, seconds(1), clock);
  EXPECT_TRUE(limiter.is_full());
  limiter.allow();
  EXPECT_FALSE(limiter.is_full());
  clock.advance(seconds(1));
  EXPECT_TRUE(limiter.is_full());
}

TEST(FixedWindowTest, InvalidArgumentsThrow) {
  EXPECT_THROW(FixedWindow(0, seconds(1)), std::invalid_argument);
  EXPECT_THROW(FixedWindow(1, Duration::zero()), std::invalid_argument);
  EXPECT_THROW(FixedWindow(1, -seconds(1)), std::invalid_argument);
  EXPECT_THROW(FixedWindow(1, seconds(1)).try_acquire(0), std::invalid_argument);
}

TEST(SlidingWindowLogTest, NeverAdmitsMoreThanTheLimitInAnyWindow) {
  ManualClock clock;
  SlidingWindowLog limiter(5, seconds(1), clock);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> gap_ms(0, 150);
  std::vector<TimePoint> admitted;
  for (int i = 0; i < 2000; ++i) {
    clock.advance(milliseconds(gap_ms(rng)));
    if (limiter.allow()) admitted.push_back(clock.now());
  }
  for (std::size_t i = 5; i < admitted.size(); ++i) {
    ASSERT_GE(admitted[i] - admitted[i - 5], seconds(1))
        << "six admissions within one window at " << i;
  }
  EXPECT_GT(admitted.size(), 100U);
}

TEST(SlidingWindowLogTest, MemoryIsBoundedByTheLimit) {
  ManualClock clock;
  SlidingWindowLog limiter(8, seconds(1), clock);
  for (int i = 0; i < 10'000; ++i) {
    clock.advance(milliseconds(1));
    limiter.allow();
    ASSERT_LE(limiter.log_size(), 8U);
  }
  limiter.try_acquire(3);
  EXPECT_LE(limiter.log_size(), 8U);
  clock.advance(seconds(1));
  EXPECT_TRUE(limiter.is_full());
}

TEST(SlidingWindowLogTest, BatchesAtOneInstantShareAnEntry) {
  ManualClock clock;
  SlidingWindowLog limiter(10, seconds(1), clock);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.allow());
  EXPECT_EQ(limiter.log_size(), 1U);
  EXPECT_EQ(limiter.try_acquire().retry_after, seconds(1));
}

TEST(SlidingWindowCounterTest, ErrorAgainstTheLogIsBoundedByThePreviousWindow) {
  // Everything in the previous window arrived at its very end; the counter assumes it was spread
  // evenly, so half-way through the next window it believes half of it is still in the window,
  // while the exact log says all of it is.
  ManualClock clock;
  SlidingWindowCounter counter(10, seconds(1), clock);
  SlidingWindowLog log(10, seconds(1), clock);
  clock.advance(milliseconds(999));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(counter.allow());
    ASSERT_TRUE(log.allow());
  }
  clock.advance(milliseconds(501));  // 1.5 s
  int counter_admits = 0, log_admits = 0;
  for (int i = 0; i < 10; ++i) {
    counter_admits += counter.allow() ? 1 : 0;
    log_admits += log.allow() ? 1 : 0;
  }
  EXPECT_EQ(log_admits, 0);
  EXPECT_EQ(counter_admits, 5);
}

TEST(SlidingWindowCounterTest, AWindowWithoutTrafficForgetsEverything) {
  ManualClock clock;
  SlidingWindowCounter limiter(4, seconds(1), clock);
  ASSERT_TRUE(limiter.try_acquire(4).allowed);
  EXPECT_FALSE(limiter.is_full());
  clock.advance(seconds(1));
  EXPECT_FALSE(limiter.is_full()) << "the count still weighs in the next window";
  EXPECT_EQ(limiter.try_acquire().reset_after, seconds(1))
      << "when the previous count stops weighing";
  clock.advance(seconds(3));
  EXPECT_TRUE(limiter.is_full());
  EXPECT_TRUE(limiter.try_acquire(4).allowed);
}

TEST(SlidingWindowCounterTest, RetryAfterIsWhenTheRequestPasses) {
  ManualClock clock;
  SlidingWindowCounter limiter(10, seconds(1), clock);
  ASSERT_TRUE(limiter.try_acquire(10).allowed);
  clock.advance(milliseconds(100));
  // Current window full: wait for the next one, where 10 * (1 - e) + 4 <= 10 from e = 0.4.
  const Decision d = limiter.try_acquire(4);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, milliseconds(1300));
  clock.advance(d.retry_after - Duration(1));
  EXPECT_FALSE(limiter.try_acquire(4).allowed);
  clock.advance(Duration(1));
  EXPECT_TRUE(limiter.try_acquire(4).allowed);
  EXPECT_EQ(limiter.try_acquire(11).retry_after, Duration::max());
}

}  // namespace
}  // namespace keel::ratelimit
