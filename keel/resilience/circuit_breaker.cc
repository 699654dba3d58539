#include "keel/resilience/circuit_breaker.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <ostream>
#include <vector>

#include "keel/core/internal/log.h"
#include "keel/core/listener_set.h"
#include "keel/resilience/bulkhead.h"
#include "keel/resilience/internal/outcome_window.h"

namespace keel::resilience {
namespace {

void require(bool ok, std::string_view field, const std::string& value, std::string_view rule) {
  if (!ok) {
    throw std::invalid_argument(
        fmt::format("CircuitBreakerConfig.{} must be {}, got {}", field, rule, value));
  }
}

void require_percent(const std::optional<double>& value, std::string_view field) {
  if (value) require(*value > 0 && *value <= 100, field, fmt::format("{}", *value), "in (0, 100]");
}

// CircuitBreakerOpen or BulkheadFull from an inner layer: keel refused the call, the
// dependency was never asked, so the outcome says nothing about its health.
bool is_refusal(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const CircuitBreakerOpen&) {
    return true;
  } catch (const BulkheadFull&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::uint64_t pack(std::uint64_t epoch, CircuitState state) {
  return epoch << 2U | static_cast<std::uint64_t>(state);
}

double percent(std::uint64_t part, std::uint64_t whole) {
  return 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::closed:
      return "closed";
    case CircuitState::open:
      return "open";
    case CircuitState::half_open:
      return "half_open";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& out, CircuitState state) { return out << to_string(state); }

void CircuitBreakerConfig::validate() const {
  require(failure_threshold >= 1, "failure_threshold", fmt::format("{}", failure_threshold),
          ">= 1");
  require(open_timeout > Duration::zero(), "open_timeout", fmt::format("{}", open_timeout), "> 0");
  require(half_open_max_calls >= 1, "half_open_max_calls", fmt::format("{}", half_open_max_calls),
          ">= 1");
  require(success_threshold >= 1, "success_threshold", fmt::format("{}", success_threshold),
          ">= 1");
  require(window_size >= 1, "window_size", fmt::format("{}", window_size), ">= 1");
  require(window_duration > Duration::zero(), "window_duration", fmt::format("{}", window_duration),
          "> 0");
  require(minimum_calls >= 1, "minimum_calls", fmt::format("{}", minimum_calls), ">= 1");
  require_percent(failure_rate_threshold, "failure_rate_threshold");
  require_percent(slow_call_rate_threshold, "slow_call_rate_threshold");
  if (slow_call_duration) {
    require(*slow_call_duration > Duration::zero(), "slow_call_duration",
            fmt::format("{}", *slow_call_duration), "> 0");
  }
  require(!slow_call_rate_threshold || slow_call_duration.has_value(), "slow_call_duration",
          "unset", "set when slow_call_rate_threshold is");
}

CircuitBreakerOpen::CircuitBreakerOpen(std::string breaker, Duration retry_after)
    : std::runtime_error(
          retry_after > Duration::zero()
              ? fmt::format("circuit breaker '{}' is open; retry after {}", breaker,
                            std::chrono::duration_cast<std::chrono::milliseconds>(retry_after))
              : fmt::format("circuit breaker '{}' is half-open and its trial calls are taken",
                            breaker)),
      breaker_(std::move(breaker)),
      retry_after_(retry_after) {}

struct CircuitBreaker::State {
  explicit State(CircuitBreakerConfig c)
      : config(std::move(c)),
        window(config.window_type == SlidingWindowType::count_based
                   ? internal::OutcomeWindow::count_based(config.window_size)
                   : internal::OutcomeWindow::time_based(config.window_duration)) {}

  const CircuitBreakerConfig config;
  ListenerSet<CircuitState, CircuitState> listeners;

  std::mutex mutex;
  CircuitState state = CircuitState::closed;  // as last observed; guarded by mutex
  bool forced = false;                        // force_open(): no HALF_OPEN until reset()
  TimePoint opened_at{};
  std::uint64_t epoch = 0;  // bumped by every transition: outcomes of older calls don't steer
  // (epoch << 2 | state), written under the mutex, read without it: the CLOSED fast path.
  std::atomic<std::uint64_t> published{0};
  // Written under the mutex; read without it.
  std::atomic<std::uint64_t> consecutive_failures{0};
  // Successes recorded on the fast path (without the mutex); metrics() adds them in.
  std::atomic<std::uint64_t> fast_successes{0};
  std::atomic<std::uint64_t> fast_slow_calls{0};
  const bool rate_rules = config.failure_rate_threshold || config.slow_call_rate_threshold;
  int trials_in_flight = 0;
  int trial_successes = 0;
  internal::OutcomeWindow window;
  CircuitBreakerMetrics counters;  // state and rates are filled in by metrics()
  // Transitions not yet delivered to listeners, oldest first, and whether a thread is at it.
  std::deque<std::pair<CircuitState, CircuitState>> undelivered;
  bool delivering = false;

  // REQUIRES: mutex held.
  void transition(CircuitState to, TimePoint now) {
    const CircuitState from = state;
    state = to;
    ++epoch;
    published.store(pack(epoch, to), std::memory_order_release);
    ++counters.transitions;
    trials_in_flight = 0;
    trial_successes = 0;
    consecutive_failures.store(0, std::memory_order_relaxed);
    window.clear();
    if (to == CircuitState::open) opened_at = now;
    undelivered.emplace_back(from, to);
  }

  // OPEN turns HALF_OPEN once the timeout has passed, when someone looks. REQUIRES: mutex held.
  void observe(TimePoint now) {
    if (state == CircuitState::open && !forced && now >= opened_at + config.open_timeout) {
      transition(CircuitState::half_open, now);
    }
  }

  Duration time_left(TimePoint now) const {
    if (state != CircuitState::open) return Duration::zero();
    if (forced) return Duration::max();
    return opened_at + config.open_timeout - now;
  }

  // The rate rules, over the window. REQUIRES: mutex held.
  bool rates_exceeded(TimePoint now) const {
    if (!config.failure_rate_threshold && !config.slow_call_rate_threshold) return false;
    const auto totals = window.totals(now);
    if (totals.calls < static_cast<std::uint64_t>(config.minimum_calls)) return false;
    return (config.failure_rate_threshold &&
            percent(totals.failures, totals.calls) >= *config.failure_rate_threshold) ||
           (config.slow_call_rate_threshold &&
            percent(totals.slow, totals.calls) >= *config.slow_call_rate_threshold);
  }

  // Delivers pending transitions in order, without the lock held while a listener runs. If
  // another thread is delivering, it delivers ours too.
  void deliver() {
    std::unique_lock lock(mutex);
    if (delivering) return;
    delivering = true;
    while (!undelivered.empty()) {
      const auto [from, to] = undelivered.front();
      undelivered.pop_front();
      lock.unlock();
      for (const auto& error : listeners.notify(from, to)) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          keel::internal::logger().warn("circuit breaker '{}': a state listener threw: {}",
                                        config.name, e.what());
        } catch (...) {
          keel::internal::logger().warn("circuit breaker '{}': a state listener threw",
                                        config.name);
        }
      }
      lock.lock();
    }
    delivering = false;
  }
};

CircuitBreaker::CircuitBreaker(CircuitBreakerConfig config, const Clock& clock)
    : state_((config.validate(), std::make_unique<State>(std::move(config)))), clock_(clock) {}

CircuitBreaker::~CircuitBreaker() = default;

const std::string& CircuitBreaker::name() const noexcept { return state_->config.name; }

const CircuitBreakerConfig& CircuitBreaker::config() const noexcept { return state_->config; }

CircuitState CircuitBreaker::state() const {
  CircuitState state;
  {
    std::lock_guard lock(state_->mutex);
    state_->observe(clock_.now());
    state = state_->state;
  }
  state_->deliver();
  return state;
}

Duration CircuitBreaker::retry_after() const {
  Duration left;
  {
    std::lock_guard lock(state_->mutex);
    const TimePoint now = clock_.now();
    state_->observe(now);
    left = state_->time_left(now);
  }
  state_->deliver();
  return left;
}

// A pure read: it reports OPEN as HALF_OPEN once the timeout has passed, as state() would, but
// leaves the transition (and its listeners) to the next call or state(), so that rendering
// metrics never runs a listener.
CircuitBreakerMetrics CircuitBreaker::metrics() const {
  std::lock_guard lock(state_->mutex);
  const State& s = *state_;
  const TimePoint now = clock_.now();
  CircuitBreakerMetrics m = s.counters;
  m.successes += s.fast_successes.load(std::memory_order_relaxed);
  m.slow_calls += s.fast_slow_calls.load(std::memory_order_relaxed);
  m.consecutive_failures = s.consecutive_failures.load(std::memory_order_relaxed);
  m.state = s.state;
  if (s.state == CircuitState::open && !s.forced && now >= s.opened_at + s.config.open_timeout) {
    m.state = CircuitState::half_open;
  }
  const auto totals = s.window.totals(now);
  m.window_calls = totals.calls;
  if (totals.calls >= static_cast<std::uint64_t>(s.config.minimum_calls)) {
    m.failure_rate = percent(totals.failures, totals.calls);
    m.slow_call_rate = percent(totals.slow, totals.calls);
  }
  return m;
}

Subscription CircuitBreaker::on_state_change(
    std::function<void(CircuitState from, CircuitState to)> listener) {
  return state_->listeners.add(std::move(listener));
}

std::optional<CircuitBreaker::Permit> CircuitBreaker::try_acquire(Duration& retry_after) {
  const std::uint64_t published = state_->published.load(std::memory_order_acquire);
  if ((published & 3U) == static_cast<std::uint64_t>(CircuitState::closed)) {
    return Permit{published >> 2U};  // CLOSED: no lock, nothing to observe
  }
  std::optional<Permit> permit;
  bool undelivered = false;
  {
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    const TimePoint now = clock_.now();
    s.observe(now);
    if (s.state == CircuitState::closed) {
      permit = Permit{s.epoch};
    } else if (s.state == CircuitState::half_open &&
               s.trials_in_flight < s.config.half_open_max_calls) {
      ++s.trials_in_flight;
      permit = Permit{s.epoch};
    } else {
      ++s.counters.rejected;
      retry_after = s.time_left(now);
    }
    undelivered = !s.undelivered.empty();
  }
  if (undelivered) state_->deliver();
  return permit;
}

CircuitBreaker::Permit CircuitBreaker::acquire_or_throw() {
  Duration retry_after{};
  const auto permit = try_acquire(retry_after);
  if (!permit) throw CircuitBreakerOpen(state_->config.name, retry_after);
  return *permit;
}

bool CircuitBreaker::try_acquire_permission() {
  Duration retry_after{};
  return try_acquire(retry_after).has_value();
}

void CircuitBreaker::record(Permit permit, bool failed, Duration elapsed) {
  State& s = *state_;
  const bool slow = s.config.slow_call_duration && elapsed >= *s.config.slow_call_duration;
  // Fast path: a success in CLOSED without rate rules only counts, and clears the consecutive
  // failures if there are any.
  if (!failed && !s.rate_rules &&
      s.published.load(std::memory_order_acquire) == pack(permit.epoch, CircuitState::closed)) {
    s.fast_successes.fetch_add(1, std::memory_order_relaxed);
    if (slow) s.fast_slow_calls.fetch_add(1, std::memory_order_relaxed);
    if (s.consecutive_failures.load(std::memory_order_relaxed) != 0) {
      std::lock_guard lock(s.mutex);
      if (s.epoch == permit.epoch) s.consecutive_failures.store(0, std::memory_order_relaxed);
    }
    return;
  }
  bool undelivered = false;
  {
    std::lock_guard lock(s.mutex);
    const TimePoint now = clock_.now();
    ++(failed ? s.counters.failures : s.counters.successes);
    if (slow) ++s.counters.slow_calls;
    if (permit.epoch == s.epoch) {  // a call admitted before the last transition only counts
      if (s.state == CircuitState::closed) {
        s.window.record(now, failed, slow);
        const std::uint64_t consecutive =
            failed ? s.consecutive_failures.load(std::memory_order_relaxed) + 1 : 0;
        s.consecutive_failures.store(consecutive, std::memory_order_relaxed);
        if (consecutive >= static_cast<std::uint64_t>(s.config.failure_threshold) ||
            s.rates_exceeded(now)) {
          s.transition(CircuitState::open, now);
        }
      } else if (s.state == CircuitState::half_open && s.trials_in_flight > 0) {
        --s.trials_in_flight;
        const bool slow_fails = slow && s.config.slow_call_rate_threshold.has_value();
        if (failed || slow_fails) {
          s.transition(CircuitState::open, now);
        } else if (++s.trial_successes >= s.config.success_threshold) {
          s.transition(CircuitState::closed, now);
        }
      }
    }
    undelivered = !s.undelivered.empty();
  }
  if (undelivered) s.deliver();
}

void CircuitBreaker::record_exception(Permit permit, std::exception_ptr error, Duration elapsed) {
  if (is_refusal(error)) {  // refused by an inner layer: the dependency was never called
    release(permit);
    return;
  }
  bool failed = true;
  if (state_->config.is_failure) {
    try {
      failed = state_->config.is_failure(error);
    } catch (...) {
      failed = true;  // a predicate that throws cannot clear the call
    }
  }
  record(permit, failed, elapsed);
}

std::uint64_t CircuitBreaker::current_epoch() const {
  return state_->published.load(std::memory_order_acquire) >> 2U;
}

void CircuitBreaker::on_success(Duration elapsed) {
  record(Permit{current_epoch()}, false, elapsed);
}

void CircuitBreaker::on_failure(Duration elapsed) {
  record(Permit{current_epoch()}, true, elapsed);
}

void CircuitBreaker::on_exception(std::exception_ptr error, Duration elapsed) {
  record_exception(Permit{current_epoch()}, std::move(error), elapsed);
}

void CircuitBreaker::release_permission() { release(Permit{current_epoch()}); }

void CircuitBreaker::release(Permit permit) {
  std::lock_guard lock(state_->mutex);
  if (permit.epoch == state_->epoch && state_->state == CircuitState::half_open &&
      state_->trials_in_flight > 0) {
    --state_->trials_in_flight;
  }
}

void CircuitBreaker::reset() {
  {
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    s.forced = false;
    if (s.state != CircuitState::closed) s.transition(CircuitState::closed, clock_.now());
    s.counters = {};
    s.fast_successes.store(0, std::memory_order_relaxed);
    s.fast_slow_calls.store(0, std::memory_order_relaxed);
    s.consecutive_failures.store(0, std::memory_order_relaxed);
    s.window.clear();
  }
  state_->deliver();
}

void CircuitBreaker::force_open() {
  {
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    s.forced = true;
    if (s.state != CircuitState::open) {
      s.transition(CircuitState::open, clock_.now());
    } else {
      s.opened_at = clock_.now();
    }
  }
  state_->deliver();
}

}  // namespace keel::resilience

namespace keel::resilience {

Subscription CircuitBreaker::register_metrics(MetricsRegistry& registry) const {
  const std::string breaker = name();
  std::vector<Subscription> parts;
  for (CircuitState state : {CircuitState::closed, CircuitState::open, CircuitState::half_open}) {
    parts.push_back(registry.gauge_fn(
        "keel_circuit_breaker_state", "1 for the state the circuit breaker is in, else 0",
        {{"breaker", breaker}, {"state", std::string(to_string(state))}},
        [this, state] { return metrics().state == state ? 1.0 : 0.0; }));
  }
  const auto calls = [&](const char* outcome, std::uint64_t CircuitBreakerMetrics::*field) {
    parts.push_back(registry.counter_fn(
        "keel_circuit_breaker_calls_total", "Calls through the circuit breaker by outcome",
        {{"breaker", breaker}, {"outcome", outcome}},
        [this, field] { return static_cast<double>(metrics().*field); }));
  };
  calls("success", &CircuitBreakerMetrics::successes);
  calls("failure", &CircuitBreakerMetrics::failures);
  calls("rejected", &CircuitBreakerMetrics::rejected);
  parts.push_back(registry.counter_fn(
      "keel_circuit_breaker_slow_calls_total", "Calls slower than slow_call_duration",
      {{"breaker", breaker}}, [this] { return static_cast<double>(metrics().slow_calls); }));
  parts.push_back(registry.counter_fn(
      "keel_circuit_breaker_transitions_total", "State transitions", {{"breaker", breaker}},
      [this] { return static_cast<double>(metrics().transitions); }));
  parts.push_back(
      registry.gauge_fn("keel_circuit_breaker_failure_rate",
                        "Percent of failed calls in the sliding window (-1 below minimum_calls)",
                        {{"breaker", breaker}}, [this] { return metrics().failure_rate; }));
  return Subscription::all(std::move(parts));
}

}  // namespace keel::resilience
