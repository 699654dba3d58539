#include "keel/core/clock.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace keel {

const Clock& default_clock() noexcept {
  static const SteadyClock clock;
  return clock;
}

// Shared with the Subscriptions handed out, so detaching works after the clock is gone.
// One recursive mutex covers advancing and the list: detaching waits for an advance running on
// another thread, and timers may advance the clock or detach from inside fire().
struct ManualClock::Sources {
  struct Entry {
    TimerSource source;
    bool active = true;  // GUARDED_BY(mu)
  };
  std::recursive_mutex mu;
  std::vector<std::shared_ptr<Entry>> list;  // GUARDED_BY(mu)
};

ManualClock::ManualClock(TimePoint start, WallTime wall_start)
    : start_(start),
      wall_start_(wall_start),
      now_ticks_(start.time_since_epoch().count()),
      sources_(std::make_shared<Sources>()) {}

TimePoint ManualClock::now() const noexcept {
  return TimePoint{TimePoint::duration{now_ticks_.load(std::memory_order_acquire)}};
}

WallTime ManualClock::wall_now() const noexcept {
  return wall_start_ + std::chrono::duration_cast<WallTime::duration>(now() - start_);
}

void ManualClock::advance(Duration d) {
  if (d < Duration::zero()) {
    throw std::invalid_argument(
        fmt::format("ManualClock::advance: negative duration {}; time only moves forward", d));
  }
  std::lock_guard lock(sources_->mu);
  set(now() + d);
}

void ManualClock::set(TimePoint t) {
  std::lock_guard lock(sources_->mu);
  if (t < now()) {
    throw std::invalid_argument(
        fmt::format("ManualClock::set: {} is before now ({}); time only moves forward",
                    t.time_since_epoch(), now().time_since_epoch()));
  }
  // Walk through each due deadline so that timers observe their own due time.
  while (auto due = earliest_due_before(t)) {
    const TimePoint at = std::max(*due, now());
    now_ticks_.store(at.time_since_epoch().count(), std::memory_order_release);
    fire_due(at);
  }
  // A timer may have advanced the clock past `t` re-entrantly; never move back.
  const TimePoint end = std::max(t, now());
  now_ticks_.store(end.time_since_epoch().count(), std::memory_order_release);
}

// REQUIRES: sources_->mu held.
std::optional<TimePoint> ManualClock::earliest_due_before(TimePoint limit) const {
  std::optional<TimePoint> earliest;
  for (const auto& entry : std::vector(sources_->list)) {
    if (!entry->active) continue;
    auto due = entry->source.next_due();
    if (due && *due <= limit && (!earliest || *due < *earliest)) earliest = due;
  }
  return earliest;
}

// REQUIRES: sources_->mu held.
void ManualClock::fire_due(TimePoint at) {
  for (const auto& entry : std::vector(sources_->list)) {
    if (!entry->active) continue;  // detached by an earlier timer in this loop
    auto due = entry->source.next_due();
    if (due && *due <= at) entry->source.fire(at);
  }
}

Subscription ManualClock::add_timer_source(TimerSource source) {
  if (!source.next_due || !source.fire) {
    throw std::invalid_argument("ManualClock::add_timer_source: next_due and fire are required");
  }
  auto entry = std::make_shared<Sources::Entry>(Sources::Entry{std::move(source)});
  {
    std::lock_guard lock(sources_->mu);
    sources_->list.push_back(entry);
  }
  std::weak_ptr<Sources> weak = sources_;
  return Subscription([weak, entry] {
    if (auto sources = weak.lock()) {
      std::lock_guard lock(sources->mu);
      entry->active = false;
      std::erase(sources->list, entry);
    }
  });
}

}  // namespace keel
