// The sliding window of call outcomes behind the circuit breaker's rate rules (not public).
//
// Count-based: the outcomes of the last `size` calls, in a ring of flags. Time-based: the calls
// of the last `duration`, in 20 buckets of duration / 20, so the window slides in steps of a
// twentieth of its length (as Resilience4j's one-second buckets do). Not thread-safe: the breaker
// holds its lock.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "keel/core/clock.h"

namespace keel::resilience::internal {

class OutcomeWindow {
 public:
  struct Totals {
    std::uint64_t calls = 0;
    std::uint64_t failures = 0;
    std::uint64_t slow = 0;
  };

  // A count-based window of `size` calls (>= 1).
  static OutcomeWindow count_based(int size);
  // A time-based window of `duration` (> 0).
  static OutcomeWindow time_based(Duration duration);

  void record(TimePoint now, bool failed, bool slow);
  Totals totals(TimePoint now) const;
  void clear();

 private:
  static constexpr std::size_t kBuckets = 20;
  struct Bucket {
    std::int64_t index = -1;  // which step of the timeline it counts
    Totals totals;
  };
  OutcomeWindow() = default;
  std::int64_t step(TimePoint now) const;

  // count-based
  std::vector<std::uint8_t> ring_;  // bit 0: failed, bit 1: slow
  std::size_t next_ = 0;
  Totals ring_totals_;
  // time-based
  Duration bucket_width_{};
  std::array<Bucket, kBuckets> buckets_{};
};

}  // namespace keel::resilience::internal
