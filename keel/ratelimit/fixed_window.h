// keel::ratelimit::FixedWindow: at most `limit` permits per window, windows aligned to
// multiples of `window` on the clock's timeline.
//
// The cheapest algorithm (one counter), and the least smooth: a client may take `limit` at the
// end of one window and `limit` again at the start of the next, up to 2 x limit within one
// window's length across the boundary. Denied requests do not count.
//
// Thread safety: a short critical section per decision.
#pragma once

#include <cstdint>
#include <mutex>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

class FixedWindow final : public RateLimiter {
 public:
  // Throws std::invalid_argument for limit <= 0 or window <= 0.
  FixedWindow(std::int64_t limit, Duration window, const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;
  bool is_full() const override;

 private:
  const Clock& clock_;
  const std::int64_t limit_;
  const Duration window_;
  mutable std::mutex mutex_;
  std::int64_t window_index_ = 0;  // guarded by mutex_
  std::int64_t count_ = 0;         // permits taken in window_index_; guarded by mutex_
};

}  // namespace keel::ratelimit
