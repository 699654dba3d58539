// The lock-free core shared by TokenBucket and Gcra (not part of the public API).
//
// A bucket with capacity C refilled at one token per I nanoseconds (the emission interval) is
// fully described by one instant: the "empty time" z at which it held (or will hold) zero tokens,
// so that tokens(now) = min(C, (now - z) / I). TokenBucket stores z itself; Gcra stores the
// theoretical arrival time TAT = z + C*I. Either way the state is one 64-bit word updated with a
// compare-and-swap, as in folly's TokenBucket.
//
// The word also carries a 4-bit generation of the parameters (rate, capacity). set_rate and
// set_capacity write the new parameters into the next of 16 slots and then swap the word to a new
// generation, so a decision computed with stale parameters fails its compare-and-swap and is
// recomputed. Times are nanoseconds relative to the bucket's construction, in 60 signed bits
// (about 18 years either side).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"
#include "keel/ratelimit/reservation.h"

namespace keel::ratelimit::internal {

struct BucketParams {
  std::int64_t interval_ns = 0;  // nanoseconds per token
  std::int64_t capacity = 0;
  std::int64_t span() const noexcept { return interval_ns * capacity; }  // C*I
};

// Validates and converts; `what` names the rate in messages ("rate_per_second", ...).
BucketParams make_bucket_params(double rate_per_second, std::int64_t capacity,
                                const char* rate_name, const char* capacity_name);

// Exponential spinning after a failed compare-and-swap: under contention, threads that retry at
// once keep failing each other's swaps; pausing a growing number of cycles lets one through.
class CasBackoff {
 public:
  void pause() noexcept {
    for (unsigned i = 0; i < spins_; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
    if (spins_ < kMaxSpins) spins_ *= 2;
  }

 private:
  static constexpr unsigned kMaxSpins = 256;
  unsigned spins_ = 4;
};

// 32-byte aligned with the state word as its first member, so that the word and the decision
// counters of RateLimiter (bytes 8-24) always share one cache line: a decision then moves one
// line between cores, not two (two threads on one bucket: 2-3 M/s with two lines, 12 M/s with
// one, on the 2-core benchmark machine).
class alignas(32) AtomicBucket : public RateLimiter {
 public:
  // Reserves `permits` (see Reservation): refused, changing nothing, when permits > capacity or
  // the wait would be longer than `max_wait`.
  Reservation reserve(std::int64_t permits = 1, Duration max_wait = Duration::max());

  // Tokens now; negative while reservations hold the bucket in debt.
  double available() const;
  bool is_full() const override;

  // Changes the rate at run time: the tokens are first brought up to date at the old rate, then
  // refill continues at the new one.
  void set_rate(double rate_per_second);
  double rate() const;
  std::int64_t capacity() const;

 protected:
  AtomicBucket(BucketParams params, const Clock& clock);
  ~AtomicBucket() override;
  // Fills the bucket; the subclass constructor calls it (it needs the subclass's representation).
  void start_full();

  // Stored word <-> empty time, for the subclass's representation.
  virtual std::int64_t empty_time(std::int64_t stored, const BucketParams& p) const = 0;
  virtual std::int64_t stored_from_empty_time(std::int64_t empty, const BucketParams& p) const = 0;

  struct Snapshot {
    std::uint64_t word;
    std::int64_t stored;
    BucketParams params;
  };
  Snapshot load() const;
  // Replaces `expected` with `stored` in the same generation; false if the word moved.
  bool try_store(const Snapshot& expected, std::int64_t stored);
  std::int64_t now_ns() const;
  TimePoint to_time_point(std::int64_t ns) const { return origin_ + Duration(ns); }
  // Decision fields from the empty time after the decision.
  static Decision describe(bool allowed, std::int64_t now, std::int64_t empty,
                           const BucketParams& p, Duration retry_after);
  void set_capacity_impl(std::int64_t capacity, const char* name);

 private:
  friend class keel::ratelimit::Reservation;
  bool refund(std::int64_t permits, TimePoint time_to_act);
  // Installs new parameters, converting the state as `convert(empty_old, old, new)`.
  // Installs make_next(current params), converting the state with
  // convert(now, empty, old_params, new_params), which returns the new empty time.
  template <class MakeNext, class Convert>
  void change_params(MakeNext make_next, Convert convert);

  struct Slot {
    std::atomic<std::int64_t> interval_ns{0};
    std::atomic<std::int64_t> capacity{0};
  };
  using Slots = std::array<Slot, 16>;
  const Slot& slot(std::uint64_t generation) const;

  std::atomic<std::uint64_t> word_{0};  // first: see the class comment
  const Clock& clock_;
  const TimePoint origin_;
  // The parameters of generation 0, until the first change allocates all 16 slots: keyed
  // limiters hold millions of buckets that never change, so they do not pay for the slots.
  const BucketParams initial_;
  std::atomic<Slots*> slots_{nullptr};  // owned; published before any generation > 0
};

}  // namespace keel::ratelimit::internal
