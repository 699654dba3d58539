#include "keel/ratelimit/gcra.h"

#include <algorithm>

#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {

Gcra::Gcra(double rate_per_second, std::int64_t burst, const Clock& clock)
    : AtomicBucket(internal::make_bucket_params(rate_per_second, burst, "rate_per_second", "burst"),
                   clock) {
  start_full();
}

// State: the theoretical arrival time TAT. Tolerance tau = burst * I.
Decision Gcra::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  // Time is read once: a retry after a lost swap reuses it (a slightly earlier time sees no more
  // tokens than the swap's winner did), which keeps the load-to-swap window short.
  const std::int64_t now = now_ns();
  internal::CasBackoff backoff;
  for (;;) {
    const Snapshot s = load();
    const internal::BucketParams& p = s.params;
    const std::int64_t start = std::max(s.stored, now);
    if (permits > p.capacity) {
      return record(describe(false, now, start - p.span(), p, Duration::max()));
    }
    const std::int64_t tat = start + permits * p.interval_ns;
    if (tat - now > p.span()) {
      return record(describe(false, now, start - p.span(), p, Duration(tat - p.span() - now)));
    }
    if (try_store(s, tat)) return record(describe(true, now, tat - p.span(), p, {}));
    backoff.pause();
  }
}

void Gcra::set_burst(std::int64_t burst) { set_capacity_impl(burst, "burst"); }

TimePoint Gcra::theoretical_arrival_time() const { return to_time_point(load().stored); }

}  // namespace keel::ratelimit
