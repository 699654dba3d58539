// keel::Clock: the one source of time for every keel component.
//
// Components never read std::chrono clocks directly; they take a `const Clock&` so that tests
// can drive time by hand (ManualClock) and every timeout, window, TTL and retry is tested
// without sleeping. `now()` is monotonic and is for measuring intervals; `wall_now()` is
// system time and is only for timestamps shown to people or stored in records.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include <optional>
#include <vector>

#include "keel/core/subscription.h"

namespace keel {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// Thread safety: every implementation is safe to call from any number of threads.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time: never goes backwards. Use it for deadlines and intervals.
  virtual TimePoint now() const noexcept = 0;
  // Calendar time, for timestamps people read. May jump (NTP, manual changes).
  virtual WallTime wall_now() const noexcept = 0;
};

// The real clocks: std::chrono::steady_clock and std::chrono::system_clock.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
  WallTime wall_now() const noexcept override { return std::chrono::system_clock::now(); }
};

// The process-wide SteadyClock, the default argument of every component that reads time.
const Clock& default_clock() noexcept;

// A clock moved by hand, for deterministic tests and demos.
//
// Starts at `start` (the zero TimePoint by default); wall time starts at `wall_start` and moves
// with it. Time only moves forward: advance() with a negative duration or set() to an earlier
// point throws std::invalid_argument.
//
// Timers attached with add_timer_source() (ManualScheduler does this) fire while the clock
// advances: advance(d) walks the clock through each due deadline in time order, so a task due at
// t+1s sees now() == t+1s even when the clock was advanced by an hour in one call, and tasks
// scheduled by tasks fire in the same advance when they fall due before its end.
//
// Thread safety: now()/wall_now() are lock-free; advances are serialised. A timer may advance
// the clock itself (re-entrantly, on the same thread).
class ManualClock final : public Clock {
 public:
  // 2026-01-01T00:00:00Z: a fixed, readable wall time so demo output is reproducible.
  static constexpr WallTime kDefaultWallStart = WallTime{std::chrono::seconds{1767225600}};

  explicit ManualClock(TimePoint start = TimePoint{}, WallTime wall_start = kDefaultWallStart);

  TimePoint now() const noexcept override;
  WallTime wall_now() const noexcept override;

  // Moves the clock forward by `d` (>= 0), firing due timers on the way.
  void advance(Duration d);
  // Moves the clock to `t` (>= now()), firing due timers on the way.
  void set(TimePoint t);

  // A source of deadlines driven by this clock. `next_due()` returns the earliest pending
  // deadline (nullopt when none); `fire(now)` runs everything due at `now`. Both are called from
  // the thread that advances the clock. The source is detached when the Subscription ends.
  struct TimerSource {
    std::function<std::optional<TimePoint>()> next_due;
    std::function<void(TimePoint now)> fire;
  };
  Subscription add_timer_source(TimerSource source);

 private:
  struct Sources;
  std::optional<TimePoint> earliest_due_before(TimePoint limit) const;
  void fire_due(TimePoint at);

  const TimePoint start_;
  const WallTime wall_start_;
  std::atomic<TimePoint::rep> now_ticks_;
  std::shared_ptr<Sources> sources_;  // also holds the mutex that serialises advances
};

}  // namespace keel
