// FailureLog: paces the warnings a Redis adapter logs while Redis fails (not part of the public
// API). At most one line per interval of clock.now(), carrying the number of failures since the
// previous line: an outage neither floods the log nor goes unreported.
//
// Thread safety: record() is safe to call from any number of threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

#include "keel/core/clock.h"

namespace keel::redis::internal {

class FailureLog {
 public:
  static constexpr Duration kDefaultInterval = std::chrono::seconds(10);

  // `clock` must outlive this object.
  explicit FailureLog(const Clock& clock, Duration interval = kDefaultInterval) noexcept
      : clock_(clock), interval_(interval.count()) {}

  // Records one failure. Returns how many failures to report when a line is due now (this one
  // included), else 0.
  std::uint64_t record() noexcept {
    const std::uint64_t unreported = unreported_.fetch_add(1, std::memory_order_relaxed) + 1;
    const auto now = clock_.now().time_since_epoch().count();
    auto last = last_line_.load(std::memory_order_relaxed);
    if (last != kNever && now - last < interval_) return 0;
    if (!last_line_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return 0;
    unreported_.fetch_sub(unreported, std::memory_order_relaxed);
    return unreported;
  }

 private:
  static constexpr Duration::rep kNever = std::numeric_limits<Duration::rep>::min();

  const Clock& clock_;
  const Duration::rep interval_;
  std::atomic<Duration::rep> last_line_{kNever};
  std::atomic<std::uint64_t> unreported_{0};
};

}  // namespace keel::redis::internal
