#include "keel/resilience/internal/outcome_window.h"

#include <algorithm>

namespace keel::resilience::internal {
namespace {

constexpr std::uint8_t kFailed = 1;
constexpr std::uint8_t kSlow = 2;
constexpr std::uint8_t kUsed = 4;

}  // namespace

OutcomeWindow OutcomeWindow::count_based(int size) {
  OutcomeWindow window;
  window.ring_.assign(static_cast<std::size_t>(size), 0);
  return window;
}

OutcomeWindow OutcomeWindow::time_based(Duration duration) {
  OutcomeWindow window;
  window.bucket_width_ = std::max(Duration(1), duration / static_cast<std::int64_t>(kBuckets));
  return window;
}

std::int64_t OutcomeWindow::step(TimePoint now) const {
  return now.time_since_epoch() / bucket_width_;
}

void OutcomeWindow::record(TimePoint now, bool failed, bool slow) {
  if (!ring_.empty()) {
    std::uint8_t& slot = ring_[next_];
    if ((slot & kUsed) != 0) {  // the oldest outcome leaves the window
      --ring_totals_.calls;
      ring_totals_.failures -= (slot & kFailed) != 0 ? 1 : 0;
      ring_totals_.slow -= (slot & kSlow) != 0 ? 1 : 0;
    }
    slot = static_cast<std::uint8_t>(kUsed | (failed ? kFailed : 0) | (slow ? kSlow : 0));
    ++ring_totals_.calls;
    ring_totals_.failures += failed ? 1 : 0;
    ring_totals_.slow += slow ? 1 : 0;
    next_ = (next_ + 1) % ring_.size();
    return;
  }
  const std::int64_t index = step(now);
  Bucket& bucket = buckets_[static_cast<std::size_t>(index % static_cast<std::int64_t>(kBuckets))];
  if (bucket.index != index) bucket = Bucket{index, {}};
  ++bucket.totals.calls;
  bucket.totals.failures += failed ? 1 : 0;
  bucket.totals.slow += slow ? 1 : 0;
}

OutcomeWindow::Totals OutcomeWindow::totals(TimePoint now) const {
  if (!ring_.empty()) return ring_totals_;
  const std::int64_t newest = step(now);
  Totals sum;
  for (const Bucket& bucket : buckets_) {
    if (bucket.index > newest - static_cast<std::int64_t>(kBuckets) && bucket.index <= newest) {
      sum.calls += bucket.totals.calls;
      sum.failures += bucket.totals.failures;
      sum.slow += bucket.totals.slow;
    }
  }
  return sum;
}

void OutcomeWindow::clear() {
  std::fill(ring_.begin(), ring_.end(), std::uint8_t{0});
  next_ = 0;
  ring_totals_ = {};
  buckets_.fill(Bucket{});
}

}  // namespace keel::resilience::internal
