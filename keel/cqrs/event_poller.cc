#include "keel/cqrs/event_poller.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "keel/core/call_gate.h"
#include "keel/core/internal/log.h"

namespace keel::cqrs {

// The poller's state, shared with the tasks it schedules (which hold it weakly: a task that
// runs after the poller is gone does nothing).
//
// One chain of polls: each scheduled task carries a ticket, and only the task holding the
// current ticket polls. wake() replaces the ticket (a task already started with the old one
// then finds it stale and returns), so two tasks never both poll and go on rescheduling.
struct EventPoller::State : std::enable_shared_from_this<State> {
  State(Scheduler& s, std::function<void()> p, EventPollerOptions o)
      : scheduler(s), poll(std::move(p)), options(o) {
    if (!poll) throw std::invalid_argument("cqrs: EventPoller without a poll function");
    if (options.interval <= Duration::zero()) {
      throw std::invalid_argument("cqrs: EventPollerOptions::interval must be > 0");
    }
  }

  // REQUIRES: mu held.
  void schedule_locked(Duration delay) {
    const std::uint64_t ticket = ++last_ticket;
    current_ticket = ticket;
    next_due = scheduler.clock().now() + delay;
    next = scheduler.schedule_after(delay, [weak = weak_from_this(), ticket] {
      if (const auto self = weak.lock()) self->run(ticket);
    });
  }

  void run(std::uint64_t ticket) {
    const CallGate::Scope scope(gate);
    if (!scope) return;  // stopped
    {
      std::lock_guard lock(mu);
      if (stopped || ticket != current_ticket) return;  // replaced by a wake()
      current_ticket = 0;
      running = true;
      again = false;
    }
    try {
      poll();
      polls.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
      failures.fetch_add(1, std::memory_order_relaxed);
      keel::internal::logger().warn("cqrs: EventPoller's poll threw: {}",
                                    keel::internal::describe(std::current_exception()));
    }
    std::lock_guard lock(mu);
    running = false;
    if (!stopped) schedule_locked(again ? Duration::zero() : options.interval);
  }

  void wake() {
    wakes.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    if (stopped) return;
    if (running) {
      again = true;  // the running poll may have read the log before this append: once more
      return;
    }
    if (current_ticket != 0 && next_due <= scheduler.clock().now()) return;  // due already
    next.cancel();
    schedule_locked(Duration::zero());
  }

  void stop() {
    {
      std::lock_guard lock(mu);
      stopped = true;
      current_ticket = 0;
      next.cancel();
    }
    gate.close();
  }

  Scheduler& scheduler;
  const std::function<void()> poll;
  const EventPollerOptions options;
  CallGate gate;  // around each poll: stop() waits for the one running
  std::mutex mu;
  bool stopped = false;              // GUARDED_BY(mu)
  bool running = false;              // GUARDED_BY(mu)
  bool again = false;                // GUARDED_BY(mu); woken while running
  std::uint64_t last_ticket = 0;     // GUARDED_BY(mu)
  std::uint64_t current_ticket = 0;  // GUARDED_BY(mu); 0: no poll scheduled
  TimePoint next_due{};              // GUARDED_BY(mu); of the scheduled poll
  TaskHandle next;                   // GUARDED_BY(mu)
  std::atomic<std::uint64_t> polls{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> wakes{0};
};

EventPoller::EventPoller(Scheduler& scheduler, EventStore& store, EventPollerOptions options)
    : EventPoller(
          scheduler, [&store] { store.deliver_new_events(); }, options) {}

EventPoller::EventPoller(Scheduler& scheduler, std::function<void()> poll,
                         EventPollerOptions options)
    : state_(std::make_shared<State>(scheduler, std::move(poll), options)) {
  std::lock_guard lock(state_->mu);
  state_->schedule_locked(options.interval);
}

EventPoller::~EventPoller() { stop(); }

void EventPoller::wake() { state_->wake(); }

void EventPoller::stop() { state_->stop(); }

EventPollerMetrics EventPoller::metrics() const {
  return EventPollerMetrics{.polls = state_->polls.load(std::memory_order_relaxed),
                            .failures = state_->failures.load(std::memory_order_relaxed),
                            .wakes = state_->wakes.load(std::memory_order_relaxed)};
}

}  // namespace keel::cqrs
