#include <fmt/format.h>

#include "examples/demo.h"

namespace keel::demo {

void run_core_demo();
void run_rate_limiter_demo();
void run_circuit_breaker_demo();

const std::vector<Demo>& all_demos() {
  static const std::vector<Demo> demos = {
      {"core", "clock, scheduler on a manual clock, backoff delays, Prometheus metrics",
       run_core_demo},
      {"rate_limiter",
       "token bucket under a burst; six algorithms on the same traffic (table + SVG chart)",
       run_rate_limiter_demo},
      {"circuit_breaker",
       "a flaky dependency behind a circuit breaker: transitions, fallback, SVG timeline",
       run_circuit_breaker_demo},
  };
  return demos;
}

void heading(const std::string& title) {
  fmt::print("\n{}\n{}\n", title, std::string(title.size(), '-'));
}

}  // namespace keel::demo
