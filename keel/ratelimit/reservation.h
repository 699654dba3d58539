// keel::ratelimit::Reservation: permits taken now from a TokenBucket or Gcra, to be used after a
// delay (the bucket may go into debt), in the manner of Go's x/time/rate Reserve.
#pragma once

#include <cstdint>
#include <utility>

#include "keel/core/clock.h"

namespace keel::ratelimit {

namespace internal {
class AtomicBucket;
}

// Move-only. The bucket that made it must outlive it.
class Reservation {
 public:
  Reservation() = default;  // a refused reservation
  Reservation(Reservation&& other) noexcept { *this = std::move(other); }
  Reservation& operator=(Reservation&& other) noexcept {
    owner_ = std::exchange(other.owner_, nullptr);
    settled_ = other.settled_;
    permits_ = other.permits_;
    delay_ = other.delay_;
    time_to_act_ = other.time_to_act_;
    return *this;
  }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation() = default;

  // False when refused (permits > capacity, or the wait would exceed the maximum): then nothing
  // was taken and delay() is Duration::max().
  bool ok() const noexcept { return owner_ != nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  // The wait, from the moment of reserving, before the caller may act. 0 when it may act now.
  Duration delay() const noexcept { return delay_; }
  TimePoint time_to_act() const noexcept { return time_to_act_; }
  std::int64_t permits() const noexcept { return permits_; }

  // Gives the permits back if called before time_to_act() (never above capacity) and returns
  // true; afterwards, or a second time, or on a refused reservation, does nothing and returns
  // false.
  bool cancel();

 private:
  friend class internal::AtomicBucket;
  Reservation(internal::AtomicBucket* owner, std::int64_t permits, Duration delay,
              TimePoint time_to_act)
      : owner_(owner), permits_(permits), delay_(delay), time_to_act_(time_to_act) {}

  internal::AtomicBucket* owner_ = nullptr;
  bool settled_ = false;  // cancel() was called
  std::int64_t permits_ = 0;
  Duration delay_ = Duration::max();
  TimePoint time_to_act_{};
};

}  // namespace keel::ratelimit
