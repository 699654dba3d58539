// Many threads on one circuit breaker. Runs under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "keel/resilience/circuit_breaker.h"
#include "keel/resilience/circuit_breaker_registry.h"

namespace keel::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kThreads = 4;

template <class F>
void run_threads(F body) {
  std::vector<std::thread> pool;
  pool.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) pool.emplace_back(body, t);
  for (auto& thread : pool) thread.join();
}

TEST(CircuitBreakerConcurrencyTest, NeverMoreTrialsThanHalfOpenMaxCalls) {
  ManualClock clock;
  CircuitBreaker cb({.failure_threshold = 1,
                     .open_timeout = seconds(1),
                     .half_open_max_calls = 3,
                     .success_threshold = 1'000'000},
                    clock);
  EXPECT_THROW(cb.call([]() -> int { throw std::runtime_error("down"); }), std::runtime_error);
  clock.advance(seconds(1));
  std::atomic<int> in_flight{0}, peak{0}, admitted{0};
  run_threads([&](int) {
    for (int i = 0; i < 2000; ++i) {
      try {
        cb.call([&] {
          const int now = ++in_flight;
          int seen = peak.load();
          while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          }
          ++admitted;
          --in_flight;
        });
      } catch (const CircuitBreakerOpen&) {
      }
    }
  });
  EXPECT_LE(peak.load(), 3);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  const auto m = cb.metrics();
  EXPECT_EQ(m.successes + m.rejected, static_cast<std::uint64_t>(kThreads) * 2000);
}

TEST(CircuitBreakerConcurrencyTest, EveryTransitionIsReportedOnceAndInOrder) {
  ManualClock clock;
  CircuitBreaker cb({.failure_threshold = 2, .open_timeout = milliseconds(1)}, clock);
  std::mutex mutex;
  std::vector<std::pair<CircuitState, CircuitState>> seen;
  Subscription sub = cb.on_state_change([&](CircuitState from, CircuitState to) {
    std::lock_guard lock(mutex);
    seen.emplace_back(from, to);
  });
  std::thread ticker([&] {
    for (int i = 0; i < 3000; ++i) clock.advance(Duration(500'000));
  });
  run_threads([&](int t) {
    for (int i = 0; i < 3000; ++i) {
      try {
        cb.call([&] {
          // Failures come in runs of 4 in every thread, so that the breaker opens even when the
          // threads happen to run one after the other (a loaded machine): a spread-out pattern
          // may never give it the 2 consecutive failures it needs.
          if ((i / 4 + t) % 3 == 0) throw std::runtime_error("flaky");
        });
      } catch (const std::exception&) {
      }
      if (i % 7 == 0) cb.state();
    }
  });
  ticker.join();
  cb.state();
  std::lock_guard lock(mutex);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.size(), cb.metrics().transitions) << "each transition exactly once";
  EXPECT_EQ(seen.front().first, CircuitState::closed);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    ASSERT_EQ(seen[i].first, seen[i - 1].second) << "transition " << i << " out of order";
  }
  EXPECT_EQ(seen.back().second, cb.state());
}

TEST(CircuitBreakerConcurrencyTest, RegistryFromManyThreadsGivesOneBreakerPerName) {
  ManualClock clock;
  CircuitBreakerRegistry registry({}, clock);
  MetricsRegistry metrics;
  Subscription exported = registry.register_metrics(metrics);
  std::vector<CircuitBreaker*> seen(kThreads);
  run_threads([&](int t) {
    for (int i = 0; i < 500; ++i) {
      CircuitBreaker& cb = registry.breaker(i % 2 == 0 ? "payments" : "inventory");
      cb.call([] {});
      if (i % 50 == 0) metrics.render();
    }
    seen[static_cast<std::size_t>(t)] = &registry.breaker("payments");
  });
  for (auto* cb : seen) EXPECT_EQ(cb, seen.front());
  EXPECT_EQ(registry.breaker("payments").metrics().successes +
                registry.breaker("inventory").metrics().successes,
            static_cast<std::uint64_t>(kThreads) * 500);
}

}  // namespace
}  // namespace keel::resilience
