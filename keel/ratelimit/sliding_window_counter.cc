#include "keel/ratelimit/sliding_window_counter.h"

#include "keel/ratelimit/internal/validate.h"
#include "keel/ratelimit/internal/window.h"

namespace keel::ratelimit {
namespace {

// The estimate previous * (w - elapsed) / w + current is compared multiplied by w, in 128-bit
// integers, so it is exact (and equal to what the Redis script computes).
__extension__ using Wide = __int128;

// The earliest elapsed time e in a window at which previous * (w - e) / w <= budget, with
// previous > 0 and 0 <= budget: w - floor(budget * w / previous), at least 0.
Duration decay_until(std::int64_t previous, std::int64_t budget, Duration window) {
  const Wide w = window.count();
  const Wide e = w - Wide{budget} * w / previous;
  return Duration(static_cast<std::int64_t>(e < 0 ? 0 : e));
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
  const Wide w = window_.count();
  const Wide weighted = Wide{previous_} * (w - elapsed.count());  // previous' share, times w
  const bool allowed =
      permits <= limit_ && weighted + Wide{current_ + permits} * w <= Wide{limit_} * w;
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
  const Wide left = Wide{limit_} * w - weighted - Wide{current_} * w;  // >= 0 unless over
  return record(Decision{
      .allowed = allowed,
      .limit = limit_,
      .remaining = left <= 0 ? 0 : static_cast<std::int64_t>(left / w),
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
