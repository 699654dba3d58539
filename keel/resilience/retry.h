// keel::resilience::Retry: call an operation again when it fails, waiting a growing, jittered
// delay (keel::Backoff) between attempts, up to a maximum number of attempts.
//
//   Retry retry({.name = "inventory", .retry_on = exception_is<Timeout, ConnectionReset>});
//   Stock stock = retry.call(fetch_stock, sku);
//
// A predicate on the exception (and, with call_while, one on the result) decides what is
// retried. CircuitBreakerOpen is never retried unless the config asks for it: a breaker that
// refuses calls says "stop calling", and retrying would only spin on it. When attempts run out,
// the last exception is rethrown (call_while: the last result is returned).
//
// Waiting goes through an injectable Sleeper, so tests advance a ManualClock instead of
// sleeping; it runs on the calling thread (the call blocks while it waits).
//
// Thread safety: every member is safe to call from any number of threads; each call() keeps its
// own attempt count and backoff. The sleeper, the random source and the predicates may be called
// from several threads at once (the random source is serialised by the Retry).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "keel/core/backoff.h"
#include "keel/core/clock.h"
#include "keel/core/listener_set.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::resilience {

struct RetryConfig {
  // Names the retry in logs and metrics. Default: "default".
  std::string name = "default";
  // Delays between attempts, and the number of attempts: backoff.max_attempts counts the first
  // call, so at most max_attempts - 1 retries. REQUIRES: a valid BackoffPolicy and
  // max_attempts >= 1 (0, "unlimited" for a bare Backoff, is refused: a retry must end).
  // Default: 100 ms doubling up to 10 s, full jitter, 3 attempts.
  BackoffPolicy backoff{.initial = std::chrono::milliseconds(100),
                        .multiplier = 2.0,
                        .max_delay = std::chrono::seconds(10),
                        .max_attempts = 3,
                        .jitter = Jitter::full};
  // Which exceptions are retried (true = retry). If it throws, the exception is logged and the
  // error is not retried. Default (empty): every exception.
  std::function<bool(std::exception_ptr)> retry_on = {};
  // CircuitBreakerOpen is not retried, whatever retry_on says, unless this is true; then
  // retry_on decides for it as for any exception. Default: false.
  bool retry_circuit_open = false;

  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

namespace internal {
template <class E>
bool holds(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace internal

// True when `error` holds an exception of one of the types E (or of a type derived from one):
// the common predicate, e.g. `config.retry_on = exception_is<Timeout, ConnectionReset>;`.
template <class... E>
bool exception_is(const std::exception_ptr& error) {
  static_assert(sizeof...(E) >= 1, "exception_is needs at least one exception type");
  return error && (internal::holds<E>(error) || ...);
}

// Waits `delay` on the calling thread. Default: std::this_thread::sleep_for.
using Sleeper = std::function<void(Duration delay)>;

// Calls since construction, by how they ended. Each call ends in exactly one of the first four.
struct RetryMetrics {
  std::uint64_t succeeded_without_retry = 0;  // the first attempt succeeded
  std::uint64_t succeeded_after_retry = 0;    // an attempt after a retry succeeded
  std::uint64_t failed_without_retry = 0;     // the first attempt failed and was not retried
                                              // (not retryable, or max_attempts == 1)
  std::uint64_t failed_after_retries = 0;     // failed after at least one retry (attempts used
                                              // up, or a later error not retryable)
  std::uint64_t retries = 0;                  // retries made, over all calls
};

class Retry {
 public:
  // Called before each wait: `attempt` is the attempt that failed (1-based), `delay` the wait
  // before the next one, `error` what it threw (null when call_while retries on a result).
  using RetryListener = std::function<void(int attempt, Duration delay, std::exception_ptr error)>;

  // Throws std::invalid_argument for an invalid config. Without a sleeper, waits with
  // std::this_thread::sleep_for; without a random source, each call seeds its own generator.
  explicit Retry(RetryConfig config = {}, Sleeper sleeper = {}, Backoff::RandomSource random = {});
  Retry(const Retry&) = delete;
  Retry& operator=(const Retry&) = delete;

  // Runs f(args...) until it returns, or throws an exception that is not retried, or
  // max_attempts are used up (then rethrows the last exception). `args` are passed to f as
  // lvalues on every attempt, so an argument is never moved from twice.
  template <class F, class... Args>
  std::invoke_result_t<F&, Args&...> call(F&& f, Args&&... args);

  // As call(), and also retries while retry_if(result) is true; when the attempts are used up
  // returns the last result (counted as failed). An exception from retry_if is handled as the
  // attempt's exception. REQUIRES: f returns a value.
  template <class Pred, class F, class... Args>
  std::invoke_result_t<F&, Args&...> call_while(Pred&& retry_if, F&& f, Args&&... args);

  RetryMetrics metrics() const noexcept;
  const std::string& name() const noexcept { return config_.name; }
  const RetryConfig& config() const noexcept { return config_; }

  // `listener` for every retry from now on, until the Subscription ends. It runs on the calling
  // thread before the wait; an exception from it is logged and does not stop the retry.
  Subscription on_retry(RetryListener listener);

  // Exposes the counters until the Subscription ends (the Retry must outlive it):
  //   keel_retry_calls_total{retry,kind="successful_without_retry"|"successful_with_retry"|
  //                                      "failed_without_retry"|"failed_with_retry"},
  //   keel_retry_retries_total{retry}.
  Subscription register_metrics(MetricsRegistry& registry) const;

 private:
  // One call's progress: which attempt it is on and the backoff for its waits.
  class Attempts {
   public:
    explicit Attempts(Retry& retry) noexcept : retry_(retry) {}
    void succeeded() noexcept;
    void failed() noexcept;
    // After the current attempt failed (threw `error`, or null: returned a result to retry):
    // the wait before the next attempt, or nullopt when there is none (the call is then counted
    // as failed).
    std::optional<Duration> next_delay(const std::exception_ptr& error);
    // Tells the listeners, waits `delay` and counts the retry. If the sleeper throws, the call
    // is counted as failed and its exception propagates.
    void wait(Duration delay, const std::exception_ptr& error);

   private:
    Retry& retry_;
    int attempt_ = 1;
    std::optional<Backoff> backoff_;  // made at the first failure: a success seeds nothing
  };

  template <class Pred, class F, class... Args>
  std::invoke_result_t<F&, Args&...> run(Pred& retry_if, F& f, Args&... args);
  bool is_retryable(const std::exception_ptr& error) const;
  Backoff::RandomSource backoff_random();

  const RetryConfig config_;
  const Sleeper sleeper_;
  const Backoff::RandomSource random_;
  std::mutex random_mu_;  // serialises random_, which need not be thread-safe
  ListenerSet<int, Duration, std::exception_ptr> listeners_;
  std::atomic<std::uint64_t> succeeded_without_retry_{0};
  std::atomic<std::uint64_t> succeeded_after_retry_{0};
  std::atomic<std::uint64_t> failed_without_retry_{0};
  std::atomic<std::uint64_t> failed_after_retries_{0};
  std::atomic<std::uint64_t> retries_{0};
};

template <class F, class... Args>
std::invoke_result_t<F&, Args&...> Retry::call(F&& f, Args&&... args) {
  auto never = [](const auto&) { return false; };
  return run(never, f, args...);
}

template <class Pred, class F, class... Args>
std::invoke_result_t<F&, Args&...> Retry::call_while(Pred&& retry_if, F&& f, Args&&... args) {
  static_assert(!std::is_void_v<std::invoke_result_t<F&, Args&...>>,
                "Retry::call_while needs a result to test: use call() for a void function");
  return run(retry_if, f, args...);
}

template <class Pred, class F, class... Args>
std::invoke_result_t<F&, Args&...> Retry::run(Pred& retry_if, F& f, Args&... args) {
  using Result = std::invoke_result_t<F&, Args&...>;
  Attempts attempts(*this);
  for (;;) {
    std::exception_ptr error;
    std::optional<Duration> delay;
    // The wait is outside the try: an exception from the sleeper ends the call instead of
    // counting as a failed attempt.
    try {
      if constexpr (std::is_void_v<Result>) {
        std::invoke(f, args...);
        attempts.succeeded();
        return;
      } else {
        Result result = std::invoke(f, args...);
        if (!retry_if(std::as_const(result))) {
          attempts.succeeded();
          return result;
        }
        delay = attempts.next_delay(nullptr);
        if (!delay) return result;
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      delay = attempts.next_delay(error);
      if (!delay) std::rethrow_exception(error);
    }
    attempts.wait(*delay, error);
  }
}

}  // namespace keel::resilience
