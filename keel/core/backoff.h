// keel::Backoff: the delays between retries of a failing operation.
//
// Delay n (n = 0 for the wait before the first retry) is initial * multiplier^n, capped at
// max_delay, then spread by the jitter strategy so that many clients that failed together do not
// retry together (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
//
//   none          d
//   full          uniform(0, d)
//   equal         d/2 + uniform(0, d/2)
//   decorrelated  min(max_delay, uniform(initial, 3 * previous delay))   (ignores the multiplier)
//
// The random source is injectable: a function returning uniform doubles in [0, 1).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

#include "keel/core/clock.h"

namespace keel {

enum class Jitter { none, full, equal, decorrelated };

std::string_view to_string(Jitter jitter) noexcept;

struct BackoffPolicy {
  // Base delay before the first retry. REQUIRES: > 0. Default: 100 ms.
  Duration initial = std::chrono::milliseconds(100);
  // Growth per retry. REQUIRES: >= 1. Default: 2.
  double multiplier = 2.0;
  // Cap on any single delay. REQUIRES: >= initial. Default: 30 s.
  Duration max_delay = std::chrono::seconds(30);
  // Attempts in all, the first call included, so at most max_attempts - 1 retries.
  // 0 means no limit. REQUIRES: >= 0. Default: 5.
  int max_attempts = 5;
  // Default: full (the AWS recommendation for contended retries).
  Jitter jitter = Jitter::full;

  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

// Yields the delays of one sequence of retries. Not thread-safe: one Backoff per operation.
class Backoff {
 public:
  using RandomSource = std::function<double()>;  // uniform in [0, 1)

  // Validates the policy. Without a random source, uses a std::mt19937_64 per thread.
  explicit Backoff(BackoffPolicy policy, RandomSource random = {});

  // The wait before the next retry, or nullopt when max_attempts is used up.
  std::optional<Duration> next();
  // Retries handed out so far.
  int retries() const noexcept { return retries_; }
  // Starts a new sequence (e.g. after a success).
  void reset() noexcept;

  const BackoffPolicy& policy() const noexcept { return policy_; }

  // The un-jittered delay before retry `retry` (0-based): min(max_delay, initial * multiplier^n).
  static Duration base_delay(const BackoffPolicy& policy, int retry);

 private:
  Duration uniform(Duration low, Duration high);
  static double thread_uniform();

  BackoffPolicy policy_;
  RandomSource random_;
  int retries_ = 0;
  Duration previous_;
};

}  // namespace keel
