// keel::Scheduler: the one way keel components wait. Retries, timeouts, TTL sweeps and scheduled
// deliveries are tasks scheduled at a point on a Clock, so that tests can run them by advancing a
// ManualClock instead of sleeping.
//
//   ThreadPoolScheduler  real time: a timer heap served by N worker threads.
//   ManualScheduler      test time: runs due tasks on the thread that advances its ManualClock.
//
// Tasks due at the same time run in the order they were scheduled. A task that throws is
// counted (stats().failed) and logged to the "keel" spdlog logger; it does not stop the
// scheduler. All methods are thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/subscription.h"

namespace keel {

using Task = std::function<void()>;

namespace internal {
struct TaskState;
class TimerQueue;
}  // namespace internal

// A handle to one scheduled task. Copies refer to the same task. A default-constructed handle
// refers to no task (every query returns false).
class TaskHandle {
 public:
  TaskHandle() = default;
  // Stops the task from running if it has not started. Returns true when this call cancelled
  // it; false when it already ran, is running, was cancelled before, or was rejected.
  // Cancelling releases the task's captures at once.
  bool cancel() noexcept;
  bool pending() const noexcept;    // scheduled, not started, not cancelled
  bool done() const noexcept;       // ran to the end (or threw)
  bool cancelled() const noexcept;  // cancelled, or rejected by a scheduler shutting down

 private:
  friend class internal::TimerQueue;
  explicit TaskHandle(std::shared_ptr<internal::TaskState> state) : state_(std::move(state)) {}
  std::shared_ptr<internal::TaskState> state_;
};

struct SchedulerStats {
  std::uint64_t scheduled = 0;  // accepted by schedule_at/schedule_after
  std::uint64_t executed = 0;   // ran (including those that threw)
  std::uint64_t failed = 0;     // threw an exception
  std::uint64_t cancelled = 0;  // cancelled before they ran (including by shutdown)
  std::uint64_t rejected = 0;   // submitted after shutdown began
  std::uint64_t pending = 0;    // waiting for their time
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // The clock deadlines are read on.
  virtual const Clock& clock() const noexcept = 0;

  // Runs `task` (must not be empty) once `due` is reached; a due time in the past means "as soon
  // as possible".
  virtual TaskHandle schedule_at(TimePoint due, Task task) = 0;

  // REQUIRES: delay >= 0 (a negative delay is a bug and throws std::invalid_argument).
  TaskHandle schedule_after(Duration delay, Task task);

  virtual SchedulerStats stats() const = 0;
};

enum class ShutdownMode {
  drain,   // stop accepting tasks; run every task already scheduled, each at its time
  cancel,  // stop accepting tasks; cancel every task that has not started
};

// Real-time scheduler: one timer heap served by `workers` threads, each of which waits for the
// earliest deadline and runs it. Deadlines are read on `clock`; waiting uses real time, so give it
// a real clock (ManualScheduler is the one for ManualClock).
//
// After shutdown() begins, schedule_at() rejects new tasks: it returns a cancelled handle and
// counts stats().rejected (a task scheduling a follow-up during a drain is rejected too).
class ThreadPoolScheduler final : public Scheduler {
 public:
  explicit ThreadPoolScheduler(std::size_t workers = 2, const Clock& clock = default_clock());
  // Shuts down with ShutdownMode::cancel if shutdown() was not called.
  ~ThreadPoolScheduler() override;
  ThreadPoolScheduler(const ThreadPoolScheduler&) = delete;
  ThreadPoolScheduler& operator=(const ThreadPoolScheduler&) = delete;

  const Clock& clock() const noexcept override { return clock_; }
  TaskHandle schedule_at(TimePoint due, Task task) override;
  SchedulerStats stats() const override;

  // Stops the scheduler and joins the workers. Idempotent; the first call's mode wins.
  // Must not be called from one of this scheduler's tasks (throws std::logic_error).
  void shutdown(ShutdownMode mode = ShutdownMode::drain);

 private:
  void work();

  const Clock& clock_;
  std::unique_ptr<internal::TimerQueue> queue_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::mutex join_mu_;     // serialises shutdown() calls
  std::vector<std::thread> workers_;
};

// Test scheduler: tasks run on the thread that advances `clock`, when it reaches their due time,
// in time order (ties in scheduling order); a task scheduled by a task runs in the same advance
// if it falls due before the advance ends, and sees clock.now() equal to its own due time.
// Tasks due now run at the next advance (advance(0s) included) or run_due().
class ManualScheduler final : public Scheduler {
 public:
  explicit ManualScheduler(ManualClock& clock);
  ~ManualScheduler() override;
  ManualScheduler(const ManualScheduler&) = delete;
  ManualScheduler& operator=(const ManualScheduler&) = delete;

  const Clock& clock() const noexcept override { return clock_; }
  TaskHandle schedule_at(TimePoint due, Task task) override;
  SchedulerStats stats() const override;

  // Runs the tasks already due at clock.now() (same as clock.advance(0s)).
  void run_due();
  // Tasks waiting for their time (cancelled ones excluded).
  std::size_t pending() const;

 private:
  ManualClock& clock_;
  std::unique_ptr<internal::TimerQueue> queue_;
  Subscription timer_source_;
};

}  // namespace keel
