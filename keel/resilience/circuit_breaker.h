// keel::resilience::CircuitBreaker: stop calling a dependency that is failing, let it recover,
// and try it again carefully.
//
//   CLOSED --(failure_threshold consecutive failures, or a rate rule)--> OPEN
//   OPEN --(open_timeout elapsed, observed by the next call or state())--> HALF_OPEN
//   HALF_OPEN --(success_threshold successful trials)--> CLOSED
//   HALF_OPEN --(a trial fails, or a rate rule)--> OPEN (with a fresh timeout)
//
// call(f, args...) runs f unless the breaker is open, in which case it throws
// CircuitBreakerOpen without calling f. Asynchronous callers ask try_acquire_permission() and
// then report exactly one of on_success / on_failure / release_permission.
//
// Thread safety: every member is safe to call from any number of threads. No timer thread: the
// OPEN -> HALF_OPEN transition happens when it is observed. Listeners run synchronously, after
// the state has changed, without the breaker's lock held (a listener may call state()); each
// transition is delivered exactly once and in order: when two threads cause transitions at once,
// the thread delivering the earlier one also delivers the later one.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::resilience {

enum class CircuitState { closed, open, half_open };
std::string_view to_string(CircuitState state) noexcept;
std::ostream& operator<<(std::ostream& out, CircuitState state);

enum class SlidingWindowType {
  count_based,  // the last window_size calls
  time_based,   // the calls of the last window_duration
};

struct CircuitBreakerConfig {
  // Names the breaker in exceptions, logs and metrics. Default: "default".
  std::string name = "default";
  // Consecutive failures in CLOSED that open the circuit. REQUIRES: >= 1. Default: 5.
  int failure_threshold = 5;
  // Time in OPEN before trial calls are let through. REQUIRES: > 0. Default: 30 s.
  Duration open_timeout = std::chrono::seconds(30);
  // Trial calls admitted at once in HALF_OPEN. REQUIRES: >= 1. Default: 1.
  int half_open_max_calls = 1;
  // Successful trials needed to close. REQUIRES: >= 1. Default: 1.
  int success_threshold = 1;

  // Rate rules, Resilience4j-style (off by default: the thresholds are unset). Over the sliding
  // window, once it holds at least minimum_calls, the breaker opens (from CLOSED or HALF_OPEN)
  // when the failure rate or the slow-call rate, in percent, reaches its threshold.
  SlidingWindowType window_type = SlidingWindowType::count_based;
  // Calls in a count-based window. REQUIRES: >= 1. Default: 100.
  int window_size = 100;
  // Length of a time-based window (kept as 20 buckets). REQUIRES: > 0. Default: 60 s.
  Duration window_duration = std::chrono::seconds(60);
  // Calls the window must hold before a rate is judged. REQUIRES: >= 1. Default: 10.
  int minimum_calls = 10;
  // Percent of failed calls that opens the circuit. REQUIRES: in (0, 100]. Default: unset (off).
  std::optional<double> failure_rate_threshold = std::nullopt;
  // A call that takes at least this long is slow (counted in metrics even without a slow-call
  // threshold). REQUIRES: > 0. Default: unset (no call is slow).
  std::optional<Duration> slow_call_duration = std::nullopt;
  // Percent of slow calls that opens the circuit. REQUIRES: in (0, 100] and slow_call_duration.
  // Default: unset (off).
  std::optional<double> slow_call_rate_threshold = std::nullopt;

  // Which exceptions count as failures; the others count as successes (a 404 is not a sick
  // dependency). Default (empty): every exception is a failure. Either way, CircuitBreakerOpen
  // and BulkheadFull thrown by an inner layer count as nothing (the call is released): keel
  // refused the call, and the dependency was never asked.
  std::function<bool(std::exception_ptr)> is_failure = {};

  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

// Thrown by call() instead of calling, while the breaker is open (or HALF_OPEN with every trial
// slot taken).
class CircuitBreakerOpen : public std::runtime_error {
 public:
  CircuitBreakerOpen(std::string breaker, Duration retry_after);
  const std::string& breaker() const noexcept { return breaker_; }
  // Time left before the breaker lets a trial through (0 in HALF_OPEN: a trial is running).
  Duration retry_after() const noexcept { return retry_after_; }

 private:
  std::string breaker_;
  Duration retry_after_;
};

// Counters since construction or reset(). Rates are percentages over the sliding window, or -1
// while it holds fewer than minimum_calls.
struct CircuitBreakerMetrics {
  CircuitState state = CircuitState::closed;
  std::uint64_t successes = 0;  // calls that succeeded (or threw what is_failure ignores)
  std::uint64_t failures = 0;
  std::uint64_t rejected = 0;  // calls refused without running
  std::uint64_t slow_calls = 0;
  std::uint64_t consecutive_failures = 0;
  std::uint64_t transitions = 0;
  std::uint64_t window_calls = 0;  // calls in the sliding window now
  double failure_rate = -1;
  double slow_call_rate = -1;
};

class CircuitBreaker {
 public:
  // Throws std::invalid_argument for an invalid config. `clock` must outlive the breaker.
  explicit CircuitBreaker(CircuitBreakerConfig config = {}, const Clock& clock = default_clock());
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Runs f(args...) and returns what it returns, or rethrows what it throws, recording the
  // outcome and its duration. Throws CircuitBreakerOpen without calling f while open.
  template <class F, class... Args>
  std::invoke_result_t<F&&, Args&&...> call(F&& f, Args&&... args);

  // The state now; observing an expired OPEN moves it to HALF_OPEN (and tells the listeners).
  CircuitState state() const;
  // A pure read (reports an expired OPEN as HALF_OPEN without moving it).
  CircuitBreakerMetrics metrics() const;
  // Exposes this breaker until the Subscription ends (the breaker must outlive it):
  //   keel_circuit_breaker_state{breaker,state="closed"|"open"|"half_open"} 1 or 0,
  //   keel_circuit_breaker_calls_total{breaker,outcome="success"|"failure"|"rejected"},
  //   keel_circuit_breaker_slow_calls_total{breaker}, keel_circuit_breaker_transitions_total,
  //   keel_circuit_breaker_failure_rate{breaker} (percent over the window; -1 below minimum_calls).
  Subscription register_metrics(MetricsRegistry& registry) const;
  const std::string& name() const noexcept;
  const CircuitBreakerConfig& config() const noexcept;

  // `listener(from, to)` for every transition from now on, until the Subscription ends.
  Subscription on_state_change(std::function<void(CircuitState from, CircuitState to)> listener);

  // The asynchronous protocol: ask; if granted, report exactly one outcome. A refusal is
  // counted as rejected.
  bool try_acquire_permission();
  void on_success(Duration elapsed);
  void on_failure(Duration elapsed);
  // Reports an exception: a failure or a success as config().is_failure decides.
  void on_exception(std::exception_ptr error, Duration elapsed);
  void release_permission();  // granted, but the call was never made

  // Time left in OPEN (0 when not open).
  Duration retry_after() const;

  // Back to CLOSED with every count cleared (a transition is reported if the state changes).
  void reset();
  // Opens the breaker and keeps it open (no HALF_OPEN after the timeout) until reset().
  void force_open();

 private:
  struct Permit {
    std::uint64_t epoch;  // state generation the call was admitted in
  };
  std::optional<Permit> try_acquire(Duration& retry_after);
  Permit acquire_or_throw();
  std::uint64_t current_epoch() const;
  void record(Permit permit, bool failed, Duration elapsed);
  void record_exception(Permit permit, std::exception_ptr error, Duration elapsed);
  void release(Permit permit);

  struct State;
  std::unique_ptr<State> state_;
  const Clock& clock_;
};

template <class F, class... Args>
std::invoke_result_t<F&&, Args&&...> CircuitBreaker::call(F&& f, Args&&... args) {
  using Result = std::invoke_result_t<F&&, Args&&...>;
  const Permit permit = acquire_or_throw();
  const TimePoint start = clock_.now();
  try {
    if constexpr (std::is_void_v<Result>) {
      std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
      record(permit, false, clock_.now() - start);
    } else {
      Result result = std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
      record(permit, false, clock_.now() - start);
      return result;  // implicitly moved (C++20), references returned as they are
    }
  } catch (...) {
    record_exception(permit, std::current_exception(), clock_.now() - start);
    throw;
  }
}

}  // namespace keel::resilience
