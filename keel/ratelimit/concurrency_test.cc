// Many threads on one limiter never admit more than the algorithm allows. Runs under TSan.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "keel/ratelimit/gcra.h"
#include "keel/ratelimit/keyed_rate_limiter.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/store.h"
#include "keel/ratelimit/token_bucket.h"

namespace keel::ratelimit {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kThreads = 4;

template <class F>
void run_threads(int threads, F body) {
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  for (auto& thread : pool) thread.join();
}

class EveryAlgorithm : public ::testing::TestWithParam<Limit> {};

TEST_P(EveryAlgorithm, ThreadsOnAFrozenClockGetExactlyTheAllowance) {
  ManualClock clock;
  auto limiter = make_limiter(GetParam(), clock);
  std::atomic<std::int64_t> admitted{0};
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < 5000; ++i) {
      if (limiter->allow()) admitted.fetch_add(1);
    }
  });
  EXPECT_EQ(admitted.load(), GetParam().amount);
  const RateLimiterMetrics m = limiter->metrics();
  EXPECT_EQ(m.allowed, static_cast<std::uint64_t>(GetParam().amount));
  EXPECT_EQ(m.allowed + m.denied, static_cast<std::uint64_t>(kThreads) * 5000);
}

TEST_P(EveryAlgorithm, ThreadsWhileTimeMovesStayWithinTheBound) {
  ManualClock clock;
  auto limiter = make_limiter(GetParam(), clock);
  std::atomic<std::int64_t> admitted{0};
  std::thread ticker([&] {
    for (int i = 0; i < 2000; ++i) clock.advance(milliseconds(1));
  });
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < 20'000; ++i) {
      if (limiter->allow()) admitted.fetch_add(1);
    }
  });
  ticker.join();
  // Over 2 s: the buckets refill 100/s on top of 50; the windows allow 50 per 1 s window, so at
  // most 3 windows are touched (0-1 s, 1-2 s, and 2 s itself).
  const Limit& limit = GetParam();
  const std::int64_t bound =
      limit.window == Duration::zero() ? limit.amount + 200 : 3 * limit.amount;
  EXPECT_LE(admitted.load(), bound);
  EXPECT_GE(admitted.load(), limit.amount);
}

INSTANTIATE_TEST_SUITE_P(Limits, EveryAlgorithm,
                         ::testing::Values(Limit::token_bucket(100, 50), Limit::gcra(100, 50),
                                           Limit::leaky_bucket(100, 50),
                                           Limit::fixed_window(50, seconds(1)),
                                           Limit::sliding_window_log(50, seconds(1)),
                                           Limit::sliding_window_counter(50, seconds(1))),
                         [](const auto& param) {
                           return std::string(to_string(param.param.algorithm));
                         });

TEST(BucketConcurrencyTest, SetRateWhileThreadsAcquire) {
  ManualClock clock;
  TokenBucket bucket(1000, 10, clock);
  std::atomic<std::int64_t> admitted{0};
  std::thread changer([&] {
    for (int i = 0; i < 500; ++i) {
      bucket.set_rate(i % 2 == 0 ? 500 : 1000);
      bucket.set_capacity(i % 3 == 0 ? 5 : 10);
      clock.advance(milliseconds(1));
    }
  });
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < 20'000; ++i) {
      if (bucket.allow()) admitted.fetch_add(1);
    }
  });
  changer.join();
  EXPECT_LE(admitted.load(), 10 + 500);  // at most the capacity plus 1000/s over 0.5 s
  EXPECT_GT(admitted.load(), 0);
}

TEST(BucketConcurrencyTest, ReservationsAndCancelsKeepTheBalance) {
  ManualClock clock;
  Gcra gcra(1000, 100, clock);
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < 1000; ++i) {
      Reservation r = gcra.reserve(1, milliseconds(50));
      if (r.ok() && r.delay() > Duration::zero()) r.cancel();
    }
  });
  // Every reservation that waited was cancelled before its time, so only the ones that could
  // act at once were kept: the burst.
  EXPECT_NEAR(gcra.available(), 0.0, 1e-9);
}

TEST(KeyedConcurrencyTest, SharedAndPrivateKeysWithEvictionsAreCountedExactly) {
  ManualClock clock;
  KeyedRateLimiter limiter(Limit::token_bucket(10, 5), {.max_keys = 64, .shards = 4}, clock);
  std::atomic<std::int64_t> shared_admitted{0};
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < 3000; ++i) {
      if (limiter.allow("shared")) shared_admitted.fetch_add(1);
      limiter.allow(fmt::format("t{}-{}", t, i % 200));
    }
  });
  const KeyedMetrics m = limiter.metrics();
  EXPECT_EQ(m.allowed + m.denied, static_cast<std::uint64_t>(kThreads) * 3000 * 2);
  EXPECT_LE(m.keys, 64U);
  EXPECT_GT(m.evicted + m.idle_dropped, 0U);
  // "shared" may be evicted and start full again; each eviction is counted.
  EXPECT_LE(shared_admitted.load(), 5 * static_cast<std::int64_t>(1 + m.evicted));
}

TEST(KeyedConcurrencyTest, MemoryStoreFromManyThreads) {
  ManualClock clock;
  MemoryStore store({}, clock);
  std::atomic<std::int64_t> admitted{0};
  run_threads(kThreads, [&](int t) {
    const Limit limit = t % 2 == 0 ? Limit::fixed_window(100, seconds(1))
                                   : Limit::sliding_window_log(100, seconds(1));
    for (int i = 0; i < 1000; ++i) {
      if (store.try_acquire("k", limit).allowed) admitted.fetch_add(1);
    }
  });
  EXPECT_EQ(admitted.load(), 200) << "100 per algorithm";
}

}  // namespace
}  // namespace keel::ratelimit
