// The circuit breaker's state machine on a ManualClock.
#include "keel/resilience/circuit_breaker.h"

#include "keel/resilience/bulkhead.h"
#include "keel/resilience/retry.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace keel::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Transition = std::pair<CircuitState, CircuitState>;

struct Unavailable : std::runtime_error {
  Unavailable() : std::runtime_error("503 service unavailable") {}
};
struct NotFound : std::runtime_error {
  NotFound() : std::runtime_error("404 not found") {}
};

int ok() { return 42; }
int fails() { throw Unavailable(); }

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker make(CircuitBreakerConfig config) {
    return CircuitBreaker(std::move(config), clock_);
  }
  void fail(CircuitBreaker& cb, int times) {
    for (int i = 0; i < times; ++i) EXPECT_THROW(cb.call(fails), Unavailable);
  }
  Subscription record_transitions(CircuitBreaker& cb) {
    return cb.on_state_change(
        [this](CircuitState from, CircuitState to) { transitions_.emplace_back(from, to); });
  }
  ManualClock clock_;
  std::vector<Transition> transitions_;
};

TEST_F(CircuitBreakerTest, TheReadmeExampleWorksAsWritten) {
  CircuitBreaker cb({.failure_threshold = 5, .open_timeout = seconds(30)}, clock_);
  const auto api_get = [](int id) -> std::string {
    if (id > 0) throw Unavailable();
    return "fresh";
  };
  const auto cached_fallback = [](int) { return std::string("cached"); };
  std::string r;
  for (int i = 0; i < 6; ++i) {
    try {
      r = cb.call(api_get, 7);
    } catch (const CircuitBreakerOpen&) {
      r = cached_fallback(7);
    } catch (const Unavailable&) {
      r = "error";
    }
  }
  EXPECT_EQ(r, "cached");
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(CircuitBreakerTest, ClosedPassesResultsAndRethrowsTheCallsOwnException) {
  CircuitBreaker cb = make({});
  EXPECT_EQ(cb.call(ok), 42);
  EXPECT_EQ(cb.call([](int a, int b) { return a + b; }, 2, 3), 5);
  int value = 0;
  int& ref = cb.call([&]() -> int& { return value; });
  EXPECT_EQ(&ref, &value) << "references pass through";
  cb.call([] {});  // void
  EXPECT_THROW(cb.call(fails), Unavailable);
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.metrics().successes, 4U);
  EXPECT_EQ(cb.metrics().failures, 1U);
}

TEST_F(CircuitBreakerTest, ConsecutiveFailuresOpenTheCircuitAndASuccessResetsThem) {
  CircuitBreaker cb = make({.failure_threshold = 3});
  fail(cb, 2);
  EXPECT_EQ(cb.metrics().consecutive_failures, 2U);
  cb.call(ok);
  EXPECT_EQ(cb.metrics().consecutive_failures, 0U);
  fail(cb, 2);
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_THROW(cb.call(fails), Unavailable) << "the call that trips it rethrows its own error";
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(CircuitBreakerTest, OpenRejectsWithoutCallingAndSaysWhenToRetry) {
  CircuitBreaker cb =
      make({.name = "payments", .failure_threshold = 1, .open_timeout = seconds(30)});
  fail(cb, 1);
  clock_.advance(seconds(10));
  int calls = 0;
  try {
    cb.call([&] { ++calls; });
    FAIL() << "expected CircuitBreakerOpen";
  } catch (const CircuitBreakerOpen& e) {
    EXPECT_EQ(e.breaker(), "payments");
    EXPECT_EQ(e.retry_after(), seconds(20));
    EXPECT_NE(std::string(e.what()).find("payments"), std::string::npos);
  }
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(cb.metrics().rejected, 1U);
  EXPECT_EQ(cb.retry_after(), seconds(20));
}

TEST_F(CircuitBreakerTest, HalfOpenFromTheTimeoutOnInclusive) {
  CircuitBreaker cb = make({.failure_threshold = 1, .open_timeout = seconds(30)});
  fail(cb, 1);
  clock_.advance(seconds(30) - Duration(1));
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_EQ(cb.metrics().state, CircuitState::open);
  clock_.advance(Duration(1));
  EXPECT_EQ(cb.metrics().state, CircuitState::half_open) << "metrics() reports it already";
  EXPECT_EQ(cb.state(), CircuitState::half_open);
}

TEST_F(CircuitBreakerTest, ATrialFailureReopensWithAFreshTimeout) {
  CircuitBreaker cb = make({.failure_threshold = 1, .open_timeout = seconds(30)});
  Subscription sub = record_transitions(cb);
  fail(cb, 1);
  clock_.advance(seconds(30));
  EXPECT_THROW(cb.call(fails), Unavailable);
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_EQ(cb.retry_after(), seconds(30));
  EXPECT_EQ(transitions_, (std::vector<Transition>{{CircuitState::closed, CircuitState::open},
                                                   {CircuitState::open, CircuitState::half_open},
                                                   {CircuitState::half_open, CircuitState::open}}));
}

TEST_F(CircuitBreakerTest, SuccessfulTrialsCloseAndResetTheCounts) {
  CircuitBreaker cb = make({.failure_threshold = 2,
                            .open_timeout = seconds(5),
                            .half_open_max_calls = 2,
                            .success_threshold = 2});
  fail(cb, 2);
  clock_.advance(seconds(5));
  EXPECT_EQ(cb.call(ok), 42);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  EXPECT_EQ(cb.call(ok), 42);
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.metrics().consecutive_failures, 0U);
  fail(cb, 1);
  EXPECT_EQ(cb.state(), CircuitState::closed) << "one failure after closing is not two";
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsOnlyMaxCallsAtOnce) {
  CircuitBreaker cb = make({.failure_threshold = 1,
                            .open_timeout = seconds(1),
                            .half_open_max_calls = 2,
                            .success_threshold = 3});
  fail(cb, 1);
  clock_.advance(seconds(1));
  EXPECT_TRUE(cb.try_acquire_permission());
  EXPECT_TRUE(cb.try_acquire_permission());
  EXPECT_FALSE(cb.try_acquire_permission()) << "both trial slots are taken";
  try {
    cb.call(ok);
    FAIL() << "expected CircuitBreakerOpen";
  } catch (const CircuitBreakerOpen& e) {
    EXPECT_EQ(e.retry_after(), Duration::zero());
  }
  cb.release_permission();  // one trial was never made
  EXPECT_EQ(cb.call(ok), 42);
  cb.on_success(milliseconds(5));
  EXPECT_EQ(cb.state(), CircuitState::half_open) << "2 of 3 successes";
  EXPECT_TRUE(cb.try_acquire_permission());
  cb.on_success(milliseconds(5));
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.metrics().rejected, 2U);
}

TEST_F(CircuitBreakerTest, ExceptionsThatAreNotFailuresCountAsSuccesses) {
  CircuitBreaker cb = make({.failure_threshold = 2, .is_failure = [](std::exception_ptr e) {
                              return !exception_is<NotFound>(e);
                            }});
  for (int i = 0; i < 5; ++i) {
    EXPECT_THROW(cb.call([]() -> int { throw NotFound(); }), NotFound) << "still rethrown";
  }
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.metrics().successes, 5U);
  fail(cb, 2);
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(CircuitBreakerTest, RefusalsByInnerLayersAreNeitherSuccessNorFailure) {
  CircuitBreaker outer = make({.failure_threshold = 1, .open_timeout = seconds(1)});
  CircuitBreaker inner = make({.failure_threshold = 1});
  inner.force_open();
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(outer.call([&] { return inner.call(ok); }), CircuitBreakerOpen);
    EXPECT_THROW(outer.call([]() -> int { throw BulkheadFull("pool"); }), BulkheadFull);
  }
  EXPECT_EQ(outer.state(), CircuitState::closed);
  EXPECT_EQ(outer.metrics().failures + outer.metrics().successes, 0U);
  // In HALF_OPEN a refused trial gives its slot back.
  fail(outer, 1);
  clock_.advance(seconds(1));
  EXPECT_THROW(outer.call([&] { return inner.call(ok); }), CircuitBreakerOpen);
  EXPECT_EQ(outer.state(), CircuitState::half_open);
  EXPECT_EQ(outer.call(ok), 42) << "the trial slot was released";
  EXPECT_EQ(outer.state(), CircuitState::closed);
}

TEST_F(CircuitBreakerTest, FailureRateOverACountBasedWindowOpensTheCircuit) {
  CircuitBreaker cb = make({.failure_threshold = 100,
                            .window_type = SlidingWindowType::count_based,
                            .window_size = 10,
                            .minimum_calls = 4,
                            .failure_rate_threshold = 50.0});
  cb.call(ok);
  fail(cb, 1);
  cb.call(ok);
  EXPECT_EQ(cb.metrics().failure_rate, -1) << "below minimum_calls";
  EXPECT_EQ(cb.state(), CircuitState::closed);
  fail(cb, 1);  // 2 of 4 = 50 %
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(CircuitBreakerTest, TheCountBasedWindowForgetsOldCalls) {
  CircuitBreaker cb = make({.failure_threshold = 100,
                            .window_size = 4,
                            .minimum_calls = 4,
                            .failure_rate_threshold = 75.0});
  fail(cb, 2);
  for (int i = 0; i < 4; ++i) cb.call(ok);
  EXPECT_EQ(cb.metrics().failure_rate, 0.0);
  EXPECT_EQ(cb.metrics().window_calls, 4U);
  fail(cb, 2);
  EXPECT_EQ(cb.metrics().failure_rate, 50.0);
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST_F(CircuitBreakerTest, TimeBasedWindowCountsOnlyRecentCalls) {
  CircuitBreaker cb = make({.failure_threshold = 100,
                            .window_type = SlidingWindowType::time_based,
                            .window_duration = seconds(10),
                            .minimum_calls = 3,
                            .failure_rate_threshold = 60.0});
  fail(cb, 2);
  clock_.advance(seconds(10));  // those two have left the window
  cb.call(ok);
  cb.call(ok);
  fail(cb, 1);
  EXPECT_EQ(cb.metrics().window_calls, 3U);
  EXPECT_EQ(cb.state(), CircuitState::closed) << "1 of 3 recent calls failed";
  fail(cb, 2);  // 3 of 5
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(CircuitBreakerTest, SlowCallsAreCountedAndTheirRateOpensTheCircuit) {
  CircuitBreaker cb = make({.failure_threshold = 100,
                            .window_size = 4,
                            .minimum_calls = 4,
                            .slow_call_duration = seconds(2),
                            .slow_call_rate_threshold = 50.0});
  const auto slow_ok = [&] {
    clock_.advance(seconds(2));
    return 1;
  };
  cb.call(ok);
  cb.call(ok);
  cb.call(slow_ok);
  EXPECT_EQ(cb.metrics().slow_calls, 1U);
  cb.call(slow_ok);
  EXPECT_EQ(cb.state(), CircuitState::open) << "2 of 4 calls took >= 2 s";
  EXPECT_EQ(cb.metrics().successes, 4U) << "slow calls still succeeded";
}

TEST_F(CircuitBreakerTest, ListenersSeeEveryTransitionOnceAndMayReadTheState) {
  CircuitBreaker cb = make({.failure_threshold = 1, .open_timeout = seconds(1)});
  std::vector<CircuitState> seen;
  Subscription sub = cb.on_state_change([&](CircuitState, CircuitState to) {
    EXPECT_EQ(cb.state(), to) << "the state has changed before the listener runs";
    seen.push_back(to);
  });
  fail(cb, 1);
  clock_.advance(seconds(1));
  cb.state();
  cb.state();
  cb.call(ok);
  EXPECT_EQ(seen, (std::vector<CircuitState>{CircuitState::open, CircuitState::half_open,
                                             CircuitState::closed}));
  EXPECT_EQ(cb.metrics().transitions, 3U);
}

TEST_F(CircuitBreakerTest, AThrowingListenerDoesNotBreakTheBreaker) {
  CircuitBreaker cb = make({.failure_threshold = 1});
  Subscription bad = cb.on_state_change(
      [](CircuitState, CircuitState) { throw std::runtime_error("listener bug"); });
  Subscription good = record_transitions(cb);
  EXPECT_THROW(cb.call(fails), Unavailable);
  EXPECT_EQ(transitions_.size(), 1U);
}

TEST_F(CircuitBreakerTest, LateOutcomesOfCallsAdmittedBeforeATransitionDoNotSteerIt) {
  CircuitBreaker cb = make({.failure_threshold = 1, .open_timeout = seconds(1)});
  // A slow call admitted while CLOSED finishes after the breaker opened and half-opened.
  int result = cb.call([&] {
    EXPECT_THROW(cb.call(fails), Unavailable);  // another call opens the breaker meanwhile
    clock_.advance(seconds(1));
    EXPECT_EQ(cb.state(), CircuitState::half_open);
    return 1;
  });
  EXPECT_EQ(result, 1);
  EXPECT_EQ(cb.state(), CircuitState::half_open) << "the late success is not a trial";
  EXPECT_EQ(cb.metrics().successes, 1U) << "but it is counted";
}

TEST_F(CircuitBreakerTest, ForceOpenHoldsUntilReset) {
  CircuitBreaker cb = make({.open_timeout = seconds(1)});
  Subscription sub = record_transitions(cb);
  cb.force_open();
  clock_.advance(seconds(60));
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_EQ(cb.retry_after(), Duration::max());
  EXPECT_THROW(cb.call(ok), CircuitBreakerOpen);
  cb.reset();
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.call(ok), 42);
  const CircuitBreakerMetrics m = cb.metrics();
  EXPECT_EQ(m.rejected, 0U) << "reset clears the counts";
  EXPECT_EQ(m.transitions, 0U);
  EXPECT_EQ(m.successes, 1U);
  EXPECT_EQ(transitions_.size(), 2U);
}

TEST_F(CircuitBreakerTest, InvalidConfigNamesTheField) {
  const std::vector<std::pair<CircuitBreakerConfig, std::string>> bad = {
      {{.failure_threshold = 0}, "failure_threshold"},
      {{.open_timeout = Duration::zero()}, "open_timeout"},
      {{.half_open_max_calls = 0}, "half_open_max_calls"},
      {{.success_threshold = -1}, "success_threshold"},
      {{.window_size = 0}, "window_size"},
      {{.window_duration = -seconds(1)}, "window_duration"},
      {{.minimum_calls = 0}, "minimum_calls"},
      {{.failure_rate_threshold = 0.0}, "failure_rate_threshold"},
      {{.failure_rate_threshold = 100.5}, "failure_rate_threshold"},
      {{.slow_call_duration = Duration::zero()}, "slow_call_duration"},
      {{.slow_call_rate_threshold = 50.0}, "slow_call_duration"},
  };
  for (const auto& [config, field] : bad) {
    try {
      CircuitBreaker cb(config, clock_);
      ADD_FAILURE() << "accepted a bad " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

TEST_F(CircuitBreakerTest, RegistersItsMetrics) {
  CircuitBreaker cb = make({.name = "inventory", .failure_threshold = 1});
  MetricsRegistry registry;
  Subscription sub = cb.register_metrics(registry);
  EXPECT_THROW(cb.call(fails), Unavailable);
  EXPECT_THROW(cb.call(ok), CircuitBreakerOpen);
  const std::string text = registry.render();
  for (const char* line :
       {R"(keel_circuit_breaker_state{breaker="inventory",state="open"} 1)",
        R"(keel_circuit_breaker_state{breaker="inventory",state="closed"} 0)",
        R"(keel_circuit_breaker_calls_total{breaker="inventory",outcome="failure"} 1)",
        R"(keel_circuit_breaker_calls_total{breaker="inventory",outcome="rejected"} 1)",
        R"(keel_circuit_breaker_transitions_total{breaker="inventory"} 1)"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace keel::resilience
