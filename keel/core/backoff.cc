#include "keel/core/backoff.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace keel {

std::string_view to_string(Jitter jitter) noexcept {
  switch (jitter) {
    case Jitter::none:
      return "none";
    case Jitter::full:
      return "full";
    case Jitter::equal:
      return "equal";
    case Jitter::decorrelated:
      return "decorrelated";
  }
  return "unknown";
}

void BackoffPolicy::validate() const {
  if (initial <= Duration::zero()) {
    throw std::invalid_argument(fmt::format("BackoffPolicy: initial must be > 0, got {}", initial));
  }
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier)) {
    throw std::invalid_argument(
        fmt::format("BackoffPolicy: multiplier must be a finite number >= 1, got {}", multiplier));
  }
  if (max_delay < initial) {
    throw std::invalid_argument(
        fmt::format("BackoffPolicy: max_delay ({}) must be >= initial ({})", max_delay, initial));
  }
  if (max_attempts < 0) {
    throw std::invalid_argument(fmt::format(
        "BackoffPolicy: max_attempts must be >= 0 (0 = unlimited), got {}", max_attempts));
  }
}

Backoff::Backoff(BackoffPolicy policy, RandomSource random)
    : policy_(policy), random_(std::move(random)), previous_(policy.initial) {
  policy_.validate();
  if (!random_) random_ = thread_uniform;
}

// One generator per thread, seeded once: seeding from std::random_device costs tens of
// microseconds (it opens the entropy source), far more than an operation that makes a Backoff
// per call (Retry, a saga step) should pay.
double Backoff::thread_uniform() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

Duration Backoff::base_delay(const BackoffPolicy& policy, int retry) {
  const double initial = static_cast<double>(policy.initial.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  // Computed in double so that large retry counts saturate at the cap instead of overflowing.
  const double delay = initial * std::pow(policy.multiplier, std::max(retry, 0));
  return delay >= cap ? policy.max_delay : Duration(static_cast<Duration::rep>(delay));
}

Duration Backoff::uniform(Duration low, Duration high) {
  const double r = std::clamp(random_(), 0.0, 1.0);
  const double span = static_cast<double>((high - low).count());
  return low + Duration(static_cast<Duration::rep>(span * r));
}

std::optional<Duration> Backoff::next() {
  if (policy_.max_attempts > 0 && retries_ >= policy_.max_attempts - 1) return std::nullopt;
  const Duration base = base_delay(policy_, retries_);
  Duration delay = base;
  switch (policy_.jitter) {
    case Jitter::none:
      break;
    case Jitter::full:
      delay = uniform(Duration::zero(), base);
      break;
    case Jitter::equal:
      delay = base / 2 + uniform(Duration::zero(), base - base / 2);
      break;
    case Jitter::decorrelated: {
      const Duration high = std::max(policy_.initial, std::min(policy_.max_delay, previous_ * 3));
      delay = std::min(policy_.max_delay, uniform(policy_.initial, high));
      break;
    }
  }
  previous_ = delay;
  ++retries_;
  return delay;
}

void Backoff::reset() noexcept {
  retries_ = 0;
  previous_ = policy_.initial;
}

}  // namespace keel
