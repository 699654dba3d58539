// keel::ratelimit::LeakyBucket: a queue of `capacity` that drains at `leak_rate_per_second`.
//
// As a meter (try_acquire) a request of n passes iff it fits in the bucket (level + n <=
// capacity), and then fills it by n. As a shaper (reserve) it also tells the caller how long its
// request waits in the queue: callers that wait that long leave at a constant rate, so nothing
// downstream sees a burst. A full bucket refuses.
//
// Thread safety: a short critical section per decision.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

class LeakyBucket final : public RateLimiter {
 public:
  // Throws std::invalid_argument for leak rate <= 0, NaN or infinite, capacity <= 0, or a
  // capacity that takes over two years to drain.
  LeakyBucket(double leak_rate_per_second, std::int64_t capacity,
              const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;

  // Puts `permits` into the queue and returns the wait after which they leave it (0 when the
  // queue is empty), or nullopt, changing nothing, when they do not fit.
  std::optional<Duration> reserve(std::int64_t permits = 1);

  // Permits queued now (fractional while draining).
  double level() const;
  bool is_full() const override;  // full allowance: the bucket is empty

 private:
  struct Fit {
    bool fits;
    std::int64_t now, start,
        end;  // start: when the queue ahead has drained; end: with this request
  };
  Fit fit(std::int64_t permits) const;  // REQUIRES: mutex_ held
  std::int64_t now_ns() const { return (clock_.now() - origin_).count(); }

  const Clock& clock_;
  const TimePoint origin_;
  const std::int64_t interval_ns_;  // nanoseconds for one permit to leak
  const std::int64_t capacity_;
  mutable std::mutex mutex_;
  std::int64_t drained_at_ = 0;  // when the queue is empty (<= now: empty); guarded by mutex_
};

}  // namespace keel::ratelimit
