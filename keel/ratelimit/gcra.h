// keel::ratelimit::Gcra: the Generic Cell Rate Algorithm (ATM's "virtual scheduling" form).
//
// Admits exactly what a TokenBucket(rate_per_second, burst) admits, but keeps only the
// theoretical arrival time (TAT) of the next request: a request of n at `now` passes iff
// max(TAT, now) + n*I - now <= burst*I, where I = 1/rate, and then TAT becomes
// max(TAT, now) + n*I. One word of state is why GCRA is the usual choice for Redis
// (redis-cell, throttled) and API gateways.
//
// Thread safety: lock-free; a decision is one compare-and-swap on one 64-bit word.
#pragma once

#include <cstdint>

#include "keel/core/clock.h"
#include "keel/ratelimit/internal/atomic_bucket.h"
#include "keel/ratelimit/reservation.h"

namespace keel::ratelimit {

class Gcra final : public internal::AtomicBucket {
 public:
  // Throws std::invalid_argument for rate <= 0, NaN or infinite, burst <= 0, or a burst that
  // takes over two years to recover.
  Gcra(double rate_per_second, std::int64_t burst, const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;

  // Changes the burst at run time, keeping the tokens (as TokenBucket::set_capacity does).
  void set_burst(std::int64_t burst);
  std::int64_t burst() const { return capacity(); }
  // The theoretical arrival time now stored.
  TimePoint theoretical_arrival_time() const;

 protected:
  std::int64_t empty_time(std::int64_t tat, const internal::BucketParams& p) const override {
    return tat - p.span();
  }
  std::int64_t stored_from_empty_time(std::int64_t empty,
                                      const internal::BucketParams& p) const override {
    return empty + p.span();
  }
};

}  // namespace keel::ratelimit
