#include "keel/core/backoff.h"

#include <gtest/gtest.h>

#include <vector>

namespace keel {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A random source that replays fixed values, so jittered delays are exact.
Backoff::RandomSource fixed(std::vector<double> values) {
  return [values, i = std::size_t{0}]() mutable { return values[i++ % values.size()]; };
}

BackoffPolicy policy(Jitter jitter, int max_attempts = 0) {
  return BackoffPolicy{.initial = milliseconds(100),
                       .multiplier = 2.0,
                       .max_delay = seconds(1),
                       .max_attempts = max_attempts,
                       .jitter = jitter};
}

std::vector<Duration> take(Backoff& backoff, int n) {
  std::vector<Duration> out;
  for (int i = 0; i < n; ++i) {
    auto d = backoff.next();
    if (!d) break;
    out.push_back(*d);
  }
  return out;
}

TEST(BackoffTest, WithoutJitterDelaysGrowGeometricallyUpToTheCap) {
  Backoff backoff(policy(Jitter::none));
  EXPECT_EQ(take(backoff, 6),
            (std::vector<Duration>{milliseconds(100), milliseconds(200), milliseconds(400),
                                   milliseconds(800), seconds(1), seconds(1)}));
}

TEST(BackoffTest, MaxAttemptsCountsTheFirstCall) {
  Backoff backoff(policy(Jitter::none, 3));
  EXPECT_EQ(take(backoff, 10).size(), 2u) << "3 attempts = the call and 2 retries";
  EXPECT_FALSE(backoff.next().has_value());
  backoff.reset();
  EXPECT_EQ(backoff.next(), milliseconds(100)) << "reset starts a new sequence";
}

TEST(BackoffTest, FullJitterIsUniformBelowTheBaseDelay) {
  Backoff backoff(policy(Jitter::full), fixed({0.5, 0.0, 0.999999}));
  const auto delays = take(backoff, 3);
  EXPECT_EQ(delays[0], milliseconds(50));
  EXPECT_EQ(delays[1], Duration::zero());
  EXPECT_LT(delays[2], milliseconds(400));
  EXPECT_GT(delays[2], milliseconds(399));
}

TEST(BackoffTest, EqualJitterKeepsAtLeastHalfTheBaseDelay) {
  Backoff backoff(policy(Jitter::equal), fixed({0.0, 1.0}));
  const auto delays = take(backoff, 2);
  EXPECT_EQ(delays[0], milliseconds(50));
  EXPECT_EQ(delays[1], milliseconds(200));
}

TEST(BackoffTest, DecorrelatedJitterGrowsFromThePreviousDelayAndIsCapped) {
  Backoff backoff(policy(Jitter::decorrelated), fixed({1.0}));
  // Always the top of the range: 3x the previous delay, starting from initial, capped at 1 s.
  EXPECT_EQ(take(backoff, 4),
            (std::vector<Duration>{milliseconds(300), milliseconds(900), seconds(1), seconds(1)}));
  Backoff low(policy(Jitter::decorrelated), fixed({0.0}));
  EXPECT_EQ(take(low, 2), (std::vector<Duration>{milliseconds(100), milliseconds(100)}))
      << "never below initial";
}

TEST(BackoffTest, JitteredDelaysStayInRangeWithTheDefaultRandomSource) {
  for (Jitter jitter : {Jitter::full, Jitter::equal, Jitter::decorrelated}) {
    Backoff backoff(policy(jitter));
    for (int retry = 0; retry < 200; ++retry) {
      const Duration d = *backoff.next();
      EXPECT_GE(d, Duration::zero()) << to_string(jitter);
      EXPECT_LE(d, seconds(1)) << to_string(jitter);
    }
  }
}

TEST(BackoffTest, HugeRetryCountsSaturateAtTheCap) {
  EXPECT_EQ(Backoff::base_delay(policy(Jitter::none), 10'000), seconds(1));
}

TEST(BackoffTest, InvalidPoliciesAreRejected) {
  auto p = policy(Jitter::none);
  p.initial = Duration::zero();
  EXPECT_THROW(Backoff{p}, std::invalid_argument);
  p = policy(Jitter::none);
  p.multiplier = 0.5;
  EXPECT_THROW(Backoff{p}, std::invalid_argument);
  p = policy(Jitter::none);
  p.max_delay = milliseconds(10);
  EXPECT_THROW(Backoff{p}, std::invalid_argument);
  p = policy(Jitter::none);
  p.max_attempts = -1;
  EXPECT_THROW(Backoff{p}, std::invalid_argument);
}

}  // namespace
}  // namespace keel
