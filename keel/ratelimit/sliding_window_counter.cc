#include "keel/ratelimit/sliding_window_counter.h"

#include <algorithm>
#include <cmath>

#include "keel/ratelimit/internal/validate.h"
#include "keel/ratelimit/internal/window.h"

namespace keel::ratelimit {
namespace {

// The earliest elapsed time e in a window at which previous * (w - e) / w <= budget, with
// previous > 0 and 0 <= budget: e = w - budget * w / previous, rounded up, at least 0.
Duration decay_until(std::int64_t previous, std::int64_t budget, Duration window) {
  const long double w = static_cast<long double>(window.count());
  const long double e =
      w - static_cast<long double>(budget) * w / static_cast<long double>(previous);
  return Duration(std::max<std::int64_t>(0, static_cast<std::int64_t>(std::ceil(e))));
}

}  // namespace

SlidingWindowCounter::SlidingWindowCounter(std::int64_t limit, Duration window, const Clock& clock)
    : clock_(clock), limit_(limit), window_(window) {
  internal::require_positive(limit, "limit");
  internal::require_positive(window, "window");
}

void SlidingWindowCounter::roll(std::int64_t index) {
  if (index == index_) return;
  previous_ = index == index_ + 1 ? current_ : 0;
  current_ = 0;
  index_ = index;
}

Decision SlidingWindowCounter::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  std::lock_guard lock(mutex_);
  const TimePoint now = clock_.now();
  const auto [index, elapsed] = internal::window_position(now, window_);
  roll(index);
  const long double w = static_cast<long double>(window_.count());
  const long double weighted =
      static_cast<long double>(previous_) * (w - static_cast<long double>(elapsed.count())) / w;
  const bool allowed =
      permits <= limit_ &&
      weighted + static_cast<long double>(current_ + permits) <= static_cast<long double>(limit_);
  if (allowed) current_ += permits;

  const TimePoint window_start = now - elapsed;
  Duration retry_after{};
  if (!allowed) {
    if (permits > limit_) {
      retry_after = Duration::max();
    } else if (current_ + permits <= limit_) {  // the previous window decays enough in this one
      retry_after =
          window_start + decay_until(previous_, limit_ - current_ - permits, window_) - now;
    } else {  // wait for the next window, where this one's count decays
      retry_after = window_start + window_ + decay_until(current_, limit_ - permits, window_) - now;
    }
  }
  Duration reset_after{};
  if (current_ > 0) {
    reset_after = window_start + 2 * window_ - now;
  } else if (previous_ > 0) {
    reset_after = window_start + window_ - now;
  }
  const long double left =
      static_cast<long double>(limit_) - weighted - static_cast<long double>(current_);
  return record(Decision{
      .allowed = allowed,
      .limit = limit_,
      .remaining = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(left))),
      .retry_after = retry_after,
      .reset_after = reset_after,
  });
}

bool SlidingWindowCounter::is_full() const {
  std::lock_guard lock(mutex_);
  const std::int64_t index = internal::window_position(clock_.now(), window_).index;
  if (index == index_) return current_ == 0 && previous_ == 0;
  if (index == index_ + 1) return current_ == 0;
  return true;
}

}  // namespace keel::ratelimit
