#include "keel/resilience/retry.h"

#include <fmt/format.h>

#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "keel/core/internal/log.h"
#include "keel/resilience/circuit_breaker.h"

namespace keel::resilience {
namespace {

// `who` is the user callback that threw `error`.
void log_callback_error(const std::string& retry, std::string_view who,
                        const std::exception_ptr& error) {
  keel::internal::logger().warn("retry '{}': {} threw: {}", retry, who,
                                keel::internal::describe(error));
}

}  // namespace

void RetryConfig::validate() const {
  // Checked first: BackoffPolicy accepts 0 (unlimited), which would make a retry endless.
  if (backoff.max_attempts < 1) {
    throw std::invalid_argument(
        fmt::format("RetryConfig.backoff.max_attempts must be >= 1, got {}", backoff.max_attempts));
  }
  try {
    backoff.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("RetryConfig.backoff: {}", e.what()));
  }
}

Retry::Retry(RetryConfig config, Sleeper sleeper, Backoff::RandomSource random)
    : config_((config.validate(), std::move(config))),
      sleeper_(sleeper ? std::move(sleeper)
                       : Sleeper([](Duration delay) { std::this_thread::sleep_for(delay); })),
      random_(std::move(random)) {}

RetryMetrics Retry::metrics() const noexcept {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  return {.succeeded_without_retry = succeeded_without_retry_.load(kRelaxed),
          .succeeded_after_retry = succeeded_after_retry_.load(kRelaxed),
          .failed_without_retry = failed_without_retry_.load(kRelaxed),
          .failed_after_retries = failed_after_retries_.load(kRelaxed),
          .retries = retries_.load(kRelaxed)};
}

Subscription Retry::on_retry(RetryListener listener) { return listeners_.add(std::move(listener)); }

Subscription Retry::register_metrics(MetricsRegistry& registry) const {
  const std::string& retry = name();
  std::vector<Subscription> parts;
  const auto calls = [&](const char* kind, std::uint64_t RetryMetrics::*field) {
    parts.push_back(
        registry.counter_fn("keel_retry_calls_total", "Calls through the retry by how they ended",
                            {{"retry", retry}, {"kind", kind}},
                            [this, field] { return static_cast<double>(metrics().*field); }));
  };
  calls("successful_without_retry", &RetryMetrics::succeeded_without_retry);
  calls("successful_with_retry", &RetryMetrics::succeeded_after_retry);
  calls("failed_without_retry", &RetryMetrics::failed_without_retry);
  calls("failed_with_retry", &RetryMetrics::failed_after_retries);
  parts.push_back(registry.counter_fn("keel_retry_retries_total", "Retries made",
                                      {{"retry", retry}},
                                      [this] { return static_cast<double>(metrics().retries); }));
  return Subscription::all(std::move(parts));
}

bool Retry::is_retryable(const std::exception_ptr& error) const {
  if (!config_.retry_circuit_open && exception_is<CircuitBreakerOpen>(error)) return false;
  if (!config_.retry_on) return true;
  try {
    return config_.retry_on(error);
  } catch (...) {
    log_callback_error(name(), "retry_on", std::current_exception());
    return false;
  }
}

Backoff::RandomSource Retry::backoff_random() {
  if (!random_) return {};
  return [this] {
    std::lock_guard lock(random_mu_);
    return random_();
  };
}

void Retry::Attempts::succeeded() noexcept {
  (attempt_ == 1 ? retry_.succeeded_without_retry_ : retry_.succeeded_after_retry_)
      .fetch_add(1, std::memory_order_relaxed);
}

std::optional<Duration> Retry::Attempts::next_delay(const std::exception_ptr& error) {
  std::optional<Duration> delay;
  if (!error || retry_.is_retryable(error)) {
    if (!backoff_) backoff_.emplace(retry_.config_.backoff, retry_.backoff_random());
    delay = backoff_->next();
  }
  if (!delay) failed();
  return delay;
}

void Retry::Attempts::failed() noexcept {
  (attempt_ == 1 ? retry_.failed_without_retry_ : retry_.failed_after_retries_)
      .fetch_add(1, std::memory_order_relaxed);
}

void Retry::Attempts::wait(Duration delay, const std::exception_ptr& error) {
  for (const auto& listener_error : retry_.listeners_.notify(attempt_, delay, error)) {
    log_callback_error(retry_.name(), "a retry listener", listener_error);
  }
  try {
    retry_.sleeper_(delay);
  } catch (...) {
    failed();
    throw;
  }
  retry_.retries_.fetch_add(1, std::memory_order_relaxed);
  ++attempt_;
}

}  // namespace keel::resilience
