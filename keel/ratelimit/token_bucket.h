// keel::ratelimit::TokenBucket: bursts up to `capacity`, sustained `rate_per_second`.
//
// Starts full; refills continuously (fractional tokens count) up to capacity. A request of n
// passes iff at least n tokens are there and takes them; a denied request takes nothing. Also
// offers reservations (reserve) and run-time changes of rate and capacity.
//
// Thread safety: lock-free; a decision is one compare-and-swap on one 64-bit word.
// Resolution: time in nanoseconds, the rate as a whole number of nanoseconds per token (so rates
// up to 10^9 per second).
#pragma once

#include <cstdint>

#include "keel/core/clock.h"
#include "keel/ratelimit/internal/atomic_bucket.h"
#include "keel/ratelimit/reservation.h"

namespace keel::ratelimit {

class TokenBucket final : public internal::AtomicBucket {
 public:
  // Throws std::invalid_argument for rate <= 0, NaN or infinite, capacity <= 0, or a capacity
  // that takes over two years to refill.
  TokenBucket(double rate_per_second, std::int64_t capacity, const Clock& clock = default_clock());

  Decision try_acquire(std::int64_t permits = 1) override;

  // Changes the capacity at run time: tokens are first brought up to date, then tokens above a
  // smaller capacity are dropped; a larger capacity does not add tokens (they refill at the rate).
  void set_capacity(std::int64_t capacity);

 protected:
  std::int64_t empty_time(std::int64_t stored, const internal::BucketParams&) const override {
    return stored;
  }
  std::int64_t stored_from_empty_time(std::int64_t empty,
                                      const internal::BucketParams&) const override {
    return empty;
  }
};

}  // namespace keel::ratelimit
