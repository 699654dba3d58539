// Retry on a ManualClock: the sleeper advances the clock and records each wait.
#include "keel/resilience/retry.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "keel/resilience/circuit_breaker.h"

namespace keel::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a transient dependency throws; the tests' retry_on retries only this.
struct Transient : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string message(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  }
}

// 100 ms doubling, capped at 1 s, no jitter unless asked.
RetryConfig config(int max_attempts, Jitter jitter = Jitter::none) {
  RetryConfig c;
  c.name = "inventory";
  c.backoff = {.initial = milliseconds(100),
               .multiplier = 2.0,
               .max_delay = seconds(1),
               .max_attempts = max_attempts,
               .jitter = jitter};
  return c;
}

// The injected sleeper: moves a manual clock instead of sleeping and keeps every wait.
struct Waits {
  ManualClock clock;
  std::vector<Duration> delays;
  Sleeper sleeper() {
    return [this](Duration d) {
      delays.push_back(d);
      clock.advance(d);
    };
  }
  Duration elapsed() const { return clock.now() - TimePoint{}; }
};

// A callable that throws Transient("failure <n>") on its first `failures` calls, then returns
// the number of the call.
struct FailsThenSucceeds {
  int failures;
  int calls = 0;
  int operator()() {
    ++calls;
    if (calls <= failures) throw Transient("failure " + std::to_string(calls));
    return calls;
  }
};

TEST(RetryTest, SucceedsAfterFailuresWaitingTheBackoffDelays) {
  Waits waits;
  Retry retry(config(4), waits.sleeper());
  FailsThenSucceeds fetch{.failures = 2};
  EXPECT_EQ(retry.call(fetch), 3);
  EXPECT_EQ(waits.delays, (std::vector<Duration>{milliseconds(100), milliseconds(200)}));
  EXPECT_EQ(waits.elapsed(), milliseconds(300));
  const RetryMetrics m = retry.metrics();
  EXPECT_EQ(m.succeeded_after_retry, 1u);
  EXPECT_EQ(m.retries, 2u);
  EXPECT_EQ(m.succeeded_without_retry + m.failed_without_retry + m.failed_after_retries, 0u);
}

TEST(RetryTest, FirstTimeSuccessNeitherWaitsNorCountsARetry) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  EXPECT_EQ(retry.call([](int a, int b) { return a + b; }, 2, 3), 5);
  EXPECT_TRUE(waits.delays.empty());
  EXPECT_EQ(retry.metrics().succeeded_without_retry, 1u);
  EXPECT_EQ(retry.metrics().retries, 0u);
}

TEST(RetryTest, StopsAtMaxAttemptsAndRethrowsTheLastException) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  FailsThenSucceeds fetch{.failures = 100};
  try {
    retry.call(fetch);
    FAIL() << "expected the last Transient";
  } catch (const Transient& e) {
    EXPECT_STREQ(e.what(), "failure 3");
  }
  EXPECT_EQ(fetch.calls, 3) << "max_attempts counts the first call";
  EXPECT_EQ(waits.delays, (std::vector<Duration>{milliseconds(100), milliseconds(200)}))
      << "no wait after the last attempt";
  EXPECT_EQ(retry.metrics().failed_after_retries, 1u);
  EXPECT_EQ(retry.metrics().retries, 2u);
}

TEST(RetryTest, OneAttemptMeansNoRetry) {
  Waits waits;
  Retry retry(config(1), waits.sleeper());
  FailsThenSucceeds fetch{.failures = 1};
  EXPECT_THROW(retry.call(fetch), Transient);
  EXPECT_EQ(fetch.calls, 1);
  EXPECT_EQ(retry.metrics().failed_without_retry, 1u);
}

TEST(RetryTest, DoesNotRetryWhatRetryOnRefuses) {
  Waits waits;
  RetryConfig c = config(5);
  c.retry_on = exception_is<Transient>;
  Retry retry(c, waits.sleeper());

  int calls = 0;
  EXPECT_THROW(retry.call([&]() -> int {
    ++calls;
    throw std::invalid_argument("bad sku");
  }),
               std::invalid_argument);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(retry.metrics().failed_without_retry, 1u);

  calls = 0;
  EXPECT_THROW(retry.call([&] {
    if (++calls == 1) throw Transient("timeout");
    throw std::invalid_argument("bad sku");
  }),
               std::invalid_argument);
  EXPECT_EQ(calls, 2) << "the transient failure is retried, the permanent one ends the call";
  EXPECT_EQ(retry.metrics().failed_after_retries, 1u);
  EXPECT_EQ(waits.delays.size(), 1u);
}

TEST(RetryTest, NeverRetriesCircuitBreakerOpenUnlessAsked) {
  const auto open_breaker = [](int& calls) {
    return [&calls] {
      ++calls;
      throw CircuitBreakerOpen("database", seconds(30));
    };
  };
  Waits waits;
  RetryConfig c = config(3);
  c.retry_on = [](std::exception_ptr) { return true; };
  Retry retry(c, waits.sleeper());
  int calls = 0;
  EXPECT_THROW(retry.call(open_breaker(calls)), CircuitBreakerOpen);
  EXPECT_EQ(calls, 1) << "retry_on says yes, but an open breaker is never retried by default";
  EXPECT_EQ(retry.metrics().failed_without_retry, 1u);

  c.retry_circuit_open = true;
  Retry asked(c, waits.sleeper());
  calls = 0;
  EXPECT_THROW(asked.call(open_breaker(calls)), CircuitBreakerOpen);
  EXPECT_EQ(calls, 3);

  c.retry_on = exception_is<Transient>;
  Retry asked_but_refused(c, waits.sleeper());
  calls = 0;
  EXPECT_THROW(asked_but_refused.call(open_breaker(calls)), CircuitBreakerOpen);
  EXPECT_EQ(calls, 1) << "with retry_circuit_open, retry_on decides for CircuitBreakerOpen too";
}

TEST(RetryTest, CallWhileRetriesOnTheResultAndReturnsTheLastOne) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  int calls = 0;
  const auto status = [&] { return ++calls == 2 ? 200 : 503; };
  const auto unavailable = [](int code) { return code == 503; };

  EXPECT_EQ(retry.call_while(unavailable, status), 200);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(retry.metrics().succeeded_after_retry, 1u);

  calls = 10;
  EXPECT_EQ(retry.call_while(unavailable, status), 503) << "attempts used up: the last result";
  EXPECT_EQ(calls, 13);
  EXPECT_EQ(retry.metrics().failed_after_retries, 1u);
  EXPECT_EQ(retry.metrics().retries, 3u);
}

TEST(RetryTest, CallWhileStillRetriesExceptions) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  FailsThenSucceeds fetch{.failures = 1};
  EXPECT_EQ(retry.call_while([](int n) { return n < 3; }, fetch), 3);
  EXPECT_EQ(fetch.calls, 3);
}

TEST(RetryTest, ArgumentsAreNeverMovedFromTwice) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  std::vector<std::string> seen;
  const auto send = [&](std::string body, const std::string& topic) {
    seen.push_back(topic + ":" + body);
    if (seen.size() < 3) throw Transient("again");
    return body.size();
  };
  EXPECT_EQ(retry.call(send, std::string(40, 'x'), std::string("orders")), 40u);
  EXPECT_EQ(seen, std::vector<std::string>(3, "orders:" + std::string(40, 'x')))
      << "each attempt gets the arguments intact";
}

TEST(RetryTest, RetriesVoidFunctions) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  int calls = 0;
  retry.call([&] {
    if (++calls < 3) throw Transient("again");
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(retry.metrics().succeeded_after_retry, 1u);
}

TEST(RetryTest, ReturnsReferencesUnchanged) {
  Retry retry(config(3), [](Duration) {});
  int stock = 7;
  int& same = retry.call([&]() -> int& { return stock; });
  EXPECT_EQ(&same, &stock);
}

TEST(RetryTest, JitteredDelaysComeFromTheRandomSource) {
  Waits waits;
  Retry retry(config(3, Jitter::full), waits.sleeper(), [] { return 0.5; });
  FailsThenSucceeds fetch{.failures = 2};
  retry.call(fetch);
  EXPECT_EQ(waits.delays, (std::vector<Duration>{milliseconds(50), milliseconds(100)}))
      << "full jitter: uniform(0, base), here half of it";
}

TEST(RetryTest, OnRetryTellsTheFailedAttemptTheDelayAndTheError) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  std::vector<std::tuple<int, Duration, std::string>> events;
  Subscription sub = retry.on_retry([&](int attempt, Duration delay, std::exception_ptr error) {
    events.emplace_back(attempt, delay, error ? message(error) : "result");
  });
  FailsThenSucceeds fetch{.failures = 2};
  retry.call(fetch);
  EXPECT_EQ(events, (std::vector<std::tuple<int, Duration, std::string>>{
                        {1, milliseconds(100), "failure 1"}, {2, milliseconds(200), "failure 2"}}));

  events.clear();
  int calls = 0;
  retry.call_while([](int n) { return n == 1; }, [&] { return ++calls; });
  EXPECT_EQ(events,
            (std::vector<std::tuple<int, Duration, std::string>>{{1, milliseconds(100), "result"}}))
      << "a retry on a result carries no error";

  sub.unsubscribe();
  events.clear();
  FailsThenSucceeds again{.failures = 1};
  retry.call(again);
  EXPECT_TRUE(events.empty());
}

TEST(RetryTest, AThrowingListenerDoesNotStopTheRetry) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  Subscription sub = retry.on_retry(
      [](int, Duration, std::exception_ptr) { throw std::runtime_error("listener bug"); });
  FailsThenSucceeds fetch{.failures = 1};
  EXPECT_EQ(retry.call(fetch), 2);
}

TEST(RetryTest, ASleeperThatThrowsEndsTheCallWithItsException) {
  Retry retry(config(3), [](Duration) { throw std::runtime_error("shutting down"); });
  FailsThenSucceeds fetch{.failures = 1};
  try {
    retry.call(fetch);
    FAIL() << "expected the sleeper's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "shutting down");
  }
  EXPECT_EQ(fetch.calls, 1) << "the interrupted wait is not an attempt";
  EXPECT_EQ(retry.metrics().failed_without_retry, 1u);
  EXPECT_EQ(retry.metrics().retries, 0u);
}

TEST(RetryTest, ARetryOnThatThrowsIsLoggedAndTheErrorIsNotRetried) {
  Waits waits;
  RetryConfig c = config(3);
  c.retry_on = [](std::exception_ptr) -> bool { throw std::logic_error("predicate bug"); };
  Retry retry(c, waits.sleeper());
  FailsThenSucceeds fetch{.failures = 1};
  EXPECT_THROW(retry.call(fetch), Transient) << "the caller sees the call's own error";
  EXPECT_EQ(fetch.calls, 1);
  EXPECT_EQ(retry.metrics().failed_without_retry, 1u);
}

TEST(RetryTest, ExceptionIsMatchesAnyOfItsTypesAndTheirSubclasses) {
  const auto error = std::make_exception_ptr(Transient("timeout"));
  EXPECT_TRUE(exception_is<Transient>(error));
  EXPECT_TRUE((exception_is<std::invalid_argument, std::runtime_error>(error)));
  EXPECT_FALSE(exception_is<std::logic_error>(error));
  EXPECT_FALSE(exception_is<std::exception>(nullptr));
}

TEST(RetryTest, InvalidConfigsAreRejectedNamingTheField) {
  const auto rejects = [](RetryConfig c, const std::string& field) {
    try {
      Retry retry(std::move(c));
      ADD_FAILURE() << "expected std::invalid_argument naming " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  RetryConfig c = config(0);
  rejects(c, "max_attempts");
  c = config(-1);
  rejects(c, "max_attempts");
  c = config(3);
  c.backoff.initial = Duration::zero();
  rejects(c, "initial");
  c = config(3);
  c.backoff.multiplier = 0.5;
  rejects(c, "multiplier");
  c = config(3);
  c.backoff.max_delay = milliseconds(1);
  rejects(c, "max_delay");
  EXPECT_NO_THROW(RetryConfig{}.validate());
}

TEST(RetryTest, RegisterMetricsExposesTheCountersUntilUnsubscribed) {
  Waits waits;
  Retry retry(config(3), waits.sleeper());
  FailsThenSucceeds fetch{.failures = 1};
  retry.call(fetch);
  MetricsRegistry registry;
  {
    Subscription sub = retry.register_metrics(registry);
    const std::string page = registry.render();
    EXPECT_NE(
        page.find(R"(keel_retry_calls_total{kind="successful_with_retry",retry="inventory"} 1)"),
        std::string::npos)
        << page;
    EXPECT_NE(page.find(R"(keel_retry_calls_total{kind="failed_with_retry",retry="inventory"} 0)"),
              std::string::npos)
        << page;
    EXPECT_NE(page.find(R"(keel_retry_retries_total{retry="inventory"} 1)"), std::string::npos)
        << page;
  }
  EXPECT_EQ(registry.render().find("keel_retry_calls_total{"), std::string::npos);
}

}  // namespace
}  // namespace keel::resilience
