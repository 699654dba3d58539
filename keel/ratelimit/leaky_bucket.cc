#include "keel/ratelimit/leaky_bucket.h"

#include <algorithm>

#include "keel/ratelimit/internal/atomic_bucket.h"
#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {

LeakyBucket::LeakyBucket(double leak_rate_per_second, std::int64_t capacity, const Clock& clock)
    : clock_(clock),
      origin_(clock.now()),
      interval_ns_(internal::make_bucket_params(leak_rate_per_second, capacity,
                                                "leak_rate_per_second", "capacity")
                       .interval_ns),
      capacity_(capacity) {}

// The queue's content is measured in time: drained_at_ - now nanoseconds of leaking are queued.
LeakyBucket::Fit LeakyBucket::fit(std::int64_t permits) const {
  const std::int64_t now = now_ns();
  const std::int64_t start = std::max(drained_at_, now);
  if (permits > capacity_) return {false, now, start, start};
  const std::int64_t end = start + permits * interval_ns_;
  return {end - now <= capacity_ * interval_ns_, now, start, end};
}

Decision LeakyBucket::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  std::lock_guard lock(mutex_);
  const Fit f = fit(permits);
  const std::int64_t span = capacity_ * interval_ns_;
  if (f.fits) drained_at_ = f.end;
  const std::int64_t queued_until = f.fits ? f.end : f.start;
  Duration retry_after{};
  if (!f.fits) {
    retry_after = permits > capacity_ ? Duration::max() : Duration(f.end - span - f.now);
  }
  return record(Decision{
      .allowed = f.fits,
      .limit = capacity_,
      .remaining = (span - (queued_until - f.now)) / interval_ns_,
      .retry_after = retry_after,
      .reset_after = Duration(queued_until - f.now),
  });
}

std::optional<Duration> LeakyBucket::reserve(std::int64_t permits) {
  internal::require_permits(permits);
  std::lock_guard lock(mutex_);
  const Fit f = fit(permits);
  record(Decision{.allowed = f.fits});
  if (!f.fits) return std::nullopt;
  drained_at_ = f.end;
  return Duration(f.start - f.now);
}

double LeakyBucket::level() const {
  std::lock_guard lock(mutex_);
  const std::int64_t queued = std::max<std::int64_t>(0, drained_at_ - now_ns());
  return static_cast<double>(queued) / static_cast<double>(interval_ns_);
}

bool LeakyBucket::is_full() const {
  std::lock_guard lock(mutex_);
  return drained_at_ <= now_ns();
}

}  // namespace keel::ratelimit
