#include "keel/ratelimit/sliding_window_log.h"

#include <algorithm>

#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {

SlidingWindowLog::SlidingWindowLog(std::int64_t limit, Duration window, const Clock& clock)
    : clock_(clock), limit_(limit), window_(window) {
  internal::require_positive(limit, "limit");
  internal::require_positive(window, "window");
}

// An entry at t counts while now < t + window, i.e. t is in (now - window, now].
void SlidingWindowLog::expire(TimePoint now) {
  while (size_ > 0 && at(0).at + window_ <= now) {
    in_window_ -= at(0).permits;
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
}

void SlidingWindowLog::push(Entry entry) {
  if (size_ > 0 && at(size_ - 1).at == entry.at) {  // same instant: one entry
    ring_[(head_ + size_ - 1) % ring_.size()].permits += entry.permits;
    return;
  }
  if (size_ == ring_.size()) {  // grow, unrolling the ring; never past limit_ entries
    const std::size_t grown_size = std::min<std::size_t>(std::max<std::size_t>(4, 2 * size_),
                                                         static_cast<std::size_t>(limit_));
    std::vector<Entry> grown(grown_size);
    for (std::size_t i = 0; i < size_; ++i) grown[i] = at(i);
    ring_ = std::move(grown);
    head_ = 0;
  }
  ring_[(head_ + size_) % ring_.size()] = entry;
  ++size_;
}

Decision SlidingWindowLog::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  std::lock_guard lock(mutex_);
  const TimePoint now = clock_.now();
  expire(now);
  const bool allowed = permits <= limit_ - in_window_;
  Duration retry_after{};
  if (allowed) {
    push({now, permits});
    in_window_ += permits;
  } else if (permits > limit_) {
    retry_after = Duration::max();
  } else {
    // The oldest permits must leave the window until `permits` fit.
    std::int64_t must_expire = in_window_ + permits - limit_;
    std::size_t i = 0;
    for (; (must_expire -= at(i).permits) > 0; ++i) {
    }
    retry_after = at(i).at + window_ - now;
  }
  return record(Decision{
      .allowed = allowed,
      .limit = limit_,
      .remaining = limit_ - in_window_,
      .retry_after = retry_after,
      .reset_after = size_ == 0 ? Duration::zero() : at(size_ - 1).at + window_ - now,
  });
}

bool SlidingWindowLog::is_full() const {
  std::lock_guard lock(mutex_);
  return size_ == 0 || at(size_ - 1).at + window_ <= clock_.now();
}

std::size_t SlidingWindowLog::log_size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

}  // namespace keel::ratelimit
