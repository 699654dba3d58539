// keel::resilience::CircuitBreakerRegistry: named circuit breakers sharing a default config, as in
// Resilience4j. One breaker per dependency ("payments", "inventory"), found by name wherever it
// is needed, and every one of them exported to a MetricsRegistry.
//
// Thread safety: all members are safe to call from any number of threads. Breakers live as long
// as the registry; references to them stay valid.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"
#include "keel/resilience/circuit_breaker.h"

namespace keel::resilience {

class CircuitBreakerRegistry {
 public:
  // Throws std::invalid_argument for an invalid default config.
  explicit CircuitBreakerRegistry(CircuitBreakerConfig defaults = {},
                                  const Clock& clock = default_clock());
  ~CircuitBreakerRegistry();
  CircuitBreakerRegistry(const CircuitBreakerRegistry&) = delete;
  CircuitBreakerRegistry& operator=(const CircuitBreakerRegistry&) = delete;

  // The breaker called `name`, created with the default config on first use.
  CircuitBreaker& breaker(std::string_view name);
  // The breaker called `name`, created with `config` (its name replaced by `name`) on first
  // use; an existing breaker is returned as it is.
  CircuitBreaker& breaker(std::string_view name, CircuitBreakerConfig config);
  // nullptr when there is none.
  CircuitBreaker* find(std::string_view name) const;
  std::vector<std::string> names() const;

  // Exports every breaker, those created later included (see CircuitBreaker::register_metrics),
  // until the Subscription ends. The registry must outlive the Subscription.
  Subscription register_metrics(MetricsRegistry& registry);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace keel::resilience
