// keel::ratelimit::SlidingWindowCounter: the sliding window approximated with two fixed-window
// counters (Cloudflare's design). Windows are aligned as in FixedWindow; a request of n at
// `elapsed` into the current window passes iff
//   previous * (window - elapsed) / window + current + n <= limit,
// i.e. it assumes the previous window's requests were spread evenly. Two counters per key,
// smooth at boundaries; its error against the exact log is bounded by the previous window's
// unevenness (see docs/ratelimit.md).
//
// Thread safety: a short critical section per decision.
#pragma once

#include <cstdint>
#include <mutex>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

class SlidingWindowCounter final : public RateLimiter {
 public:
  // Throws std::invalid_argument for limit <= 0 or window <= 0.
  SlidingWindowCounter(std::int64_t limit, Duration window, const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;
  bool is_full() const override;

 private:
  void roll(std::int64_t index);  // REQUIRES: mutex_ held

  const Clock& clock_;
  const std::int64_t limit_;
  const Duration window_;
  mutable std::mutex mutex_;
  std::int64_t index_ = 0;     // current window; guarded by mutex_
  std::int64_t current_ = 0;   // guarded by mutex_
  std::int64_t previous_ = 0;  // count of window index_ - 1; guarded by mutex_
};

}  // namespace keel::ratelimit
