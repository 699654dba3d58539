// keel::ratelimit::SlidingWindowLog: exact sliding window. A request of n at t passes iff the
// permits accepted in (t - window, t] plus n are at most `limit`.
//
// Only accepted requests are logged, as (time, permits) entries; there are never more than
// `limit` of them, so memory is O(limit) per limiter whatever the traffic, and the log grows only
// as far as it is used.
//
// Thread safety: a short critical section per decision.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

class SlidingWindowLog final : public RateLimiter {
 public:
  // Throws std::invalid_argument for limit <= 0 or window <= 0.
  SlidingWindowLog(std::int64_t limit, Duration window, const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;
  bool is_full() const override;
  // Entries held now (for tests and memory accounting).
  std::size_t log_size() const;

 private:
  struct Entry {
    TimePoint at;
    std::int64_t permits;
  };
  void expire(TimePoint now);  // REQUIRES: mutex_ held
  const Entry& at(std::size_t i) const { return ring_[(head_ + i) % ring_.size()]; }
  void push(Entry entry);

  const Clock& clock_;
  const std::int64_t limit_;
  const Duration window_;
  mutable std::mutex mutex_;
  std::vector<Entry> ring_;     // circular buffer, grown on demand up to limit_ entries
  std::size_t head_ = 0;        // oldest entry
  std::size_t size_ = 0;        // entries in use
  std::int64_t in_window_ = 0;  // sum of their permits
};

}  // namespace keel::ratelimit
