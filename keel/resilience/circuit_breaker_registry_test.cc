#include "keel/resilience/circuit_breaker_registry.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace keel::resilience {
namespace {

using std::chrono::seconds;

TEST(CircuitBreakerRegistryTest, CreatesBreakersByNameFromTheSharedDefaults) {
  ManualClock clock;
  CircuitBreakerRegistry registry({.failure_threshold = 2, .open_timeout = seconds(10)}, clock);
  CircuitBreaker& payments = registry.breaker("payments");
  EXPECT_EQ(&registry.breaker("payments"), &payments);
  EXPECT_EQ(payments.name(), "payments");
  EXPECT_EQ(payments.config().failure_threshold, 2);
  CircuitBreaker& search = registry.breaker("search", {.failure_threshold = 7});
  EXPECT_EQ(search.config().failure_threshold, 7);
  EXPECT_EQ(search.name(), "search") << "the registry names it";
  EXPECT_EQ(&registry.breaker("search", {.failure_threshold = 1}), &search)
      << "an existing breaker is returned as it is";
  EXPECT_EQ(registry.find("nope"), nullptr);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"payments", "search"}));
  EXPECT_THROW(CircuitBreakerRegistry({.failure_threshold = 0}), std::invalid_argument);
  EXPECT_THROW(registry.breaker("bad", {.success_threshold = 0}), std::invalid_argument);
  EXPECT_EQ(registry.find("bad"), nullptr);
}

TEST(CircuitBreakerRegistryTest, ExportsEveryBreakerIncludingLaterOnes) {
  ManualClock clock;
  CircuitBreakerRegistry registry({.failure_threshold = 1}, clock);
  registry.breaker("early");
  MetricsRegistry metrics;
  Subscription exported = registry.register_metrics(metrics);
  CircuitBreaker& late = registry.breaker("late");
  EXPECT_THROW(late.call([]() -> int { throw std::runtime_error("down"); }), std::runtime_error);
  const std::string text = metrics.render();
  EXPECT_NE(text.find(R"(keel_circuit_breaker_state{breaker="early",state="closed"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(keel_circuit_breaker_state{breaker="late",state="open"} 1)"),
            std::string::npos)
      << text;
  exported.unsubscribe();
  EXPECT_EQ(metrics.render().find("keel_circuit_breaker_state{"), std::string::npos);
}

}  // namespace
}  // namespace keel::resilience
