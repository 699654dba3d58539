// keel::cqrs::EventPoller: brings events appended by other processes to this process's
// subscriptions (projections, the outbox) by calling EventStore::deliver_new_events() on a
// keel::Scheduler every `interval`. A store sees its own appends at once; it learns of another
// process's only when asked, and this is who asks.
//
//   sqlite::SqliteEventStore store("bank.db");          // other processes append to it too
//   cqrs::ProjectionRunner runner(store, balances);
//   runner.start();
//   cqrs::EventPoller poller(scheduler, store, {.interval = std::chrono::milliseconds(200)});
//
// wake() polls as soon as the scheduler can, without waiting for the interval: on PostgreSQL,
// postgres::AppendListener calls it when another process's append commits (LISTEN/NOTIFY), so
// events arrive within a round trip and the timer is only the fallback.
//
// Behaviour: the first poll comes one interval after construction, the next one an interval
// after each poll ends (polls never overlap, and a slow poll is not followed by a burst). A
// wake() while a poll is scheduled for later moves it to now; wake()s while a poll runs make
// one more poll after it. A poll that throws is logged and counted, and polling goes on.
//
// Thread safety: all members are safe from any thread; the poll runs on the scheduler's
// threads, one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "keel/core/clock.h"
#include "keel/core/scheduler.h"
#include "keel/cqrs/event_store.h"

namespace keel::cqrs {

struct EventPollerOptions {
  // Time between the end of a poll and the start of the next. REQUIRES: > 0.
  // Default: 100 ms.
  Duration interval = std::chrono::milliseconds(100);
};

// Counters since construction; exact under concurrency.
struct EventPollerMetrics {
  std::uint64_t polls = 0;     // polls that returned
  std::uint64_t failures = 0;  // polls that threw (logged; polling went on)
  std::uint64_t wakes = 0;     // wake() calls
};

class EventPoller {
 public:
  // Polls `store` (store.deliver_new_events()). `scheduler` and `store` must outlive the
  // poller. Throws std::invalid_argument for an interval <= 0.
  EventPoller(Scheduler& scheduler, EventStore& store, EventPollerOptions options = {});
  // Calls `poll` (must not be empty) instead: for anything else that must be asked.
  EventPoller(Scheduler& scheduler, std::function<void()> poll, EventPollerOptions options = {});
  // stop().
  ~EventPoller();
  EventPoller(const EventPoller&) = delete;
  EventPoller& operator=(const EventPoller&) = delete;

  // Polls as soon as possible (see the header comment). Does nothing once stopped.
  void wake();
  // Cancels the next poll; once it returns, no poll is running (except one that called stop()
  // itself) and none will start. Idempotent.
  void stop();

  EventPollerMetrics metrics() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace keel::cqrs
