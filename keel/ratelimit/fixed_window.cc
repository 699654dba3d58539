#include "keel/ratelimit/fixed_window.h"

#include "keel/ratelimit/internal/validate.h"
#include "keel/ratelimit/internal/window.h"

namespace keel::ratelimit {

FixedWindow::FixedWindow(std::int64_t limit, Duration window, const Clock& clock)
    : clock_(clock), limit_(limit), window_(window) {
  internal::require_positive(limit, "limit");
  internal::require_positive(window, "window");
}

Decision FixedWindow::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  std::lock_guard lock(mutex_);
  const auto [index, elapsed] = internal::window_position(clock_.now(), window_);
  if (index != window_index_) {
    window_index_ = index;
    count_ = 0;
  }
  const Duration to_end = window_ - elapsed;
  const bool allowed = permits <= limit_ - count_;
  if (allowed) count_ += permits;
  Duration retry_after{};
  if (!allowed) retry_after = permits > limit_ ? Duration::max() : to_end;
  return record(Decision{
      .allowed = allowed,
      .limit = limit_,
      .remaining = limit_ - count_,
      .retry_after = retry_after,
      .reset_after = count_ > 0 ? to_end : Duration::zero(),
  });
}

bool FixedWindow::is_full() const {
  std::lock_guard lock(mutex_);
  return count_ == 0 || internal::window_position(clock_.now(), window_).index != window_index_;
}

}  // namespace keel::ratelimit
