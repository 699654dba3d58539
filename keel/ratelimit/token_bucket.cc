#include "keel/ratelimit/token_bucket.h"

#include <algorithm>

#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {

TokenBucket::TokenBucket(double rate_per_second, std::int64_t capacity, const Clock& clock)
    : AtomicBucket(
          internal::make_bucket_params(rate_per_second, capacity, "rate_per_second", "capacity"),
          clock) {
  start_full();
}

// State: the empty time z. tokens(now) = min(C, (now - z) / I).
Decision TokenBucket::try_acquire(std::int64_t permits) {
  internal::require_permits(permits);
  // Time is read once: a retry after a lost swap reuses it (a slightly earlier time sees no more
  // tokens than the swap's winner did), which keeps the load-to-swap window short.
  const std::int64_t now = now_ns();
  internal::CasBackoff backoff;
  for (;;) {
    const Snapshot s = load();
    const internal::BucketParams& p = s.params;
    const std::int64_t empty = std::max(s.stored, now - p.span());  // never above capacity
    if (permits > p.capacity) return record(describe(false, now, empty, p, Duration::max()));
    const std::int64_t cost = permits * p.interval_ns;
    if (now - empty < cost) {
      return record(describe(false, now, empty, p, Duration(empty + cost - now)));
    }
    if (try_store(s, empty + cost)) return record(describe(true, now, empty + cost, p, {}));
    backoff.pause();
  }
}

void TokenBucket::set_capacity(std::int64_t capacity) { set_capacity_impl(capacity, "capacity"); }

}  // namespace keel::ratelimit
