// The timer heap shared by keel's schedulers. Thread-safe; runs no task itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <vector>

#include "keel/core/scheduler.h"

namespace keel::internal {

// Counters shared by a queue and its task handles (a handle may cancel after the queue is gone).
struct TaskCounters {
  std::atomic<std::uint64_t> scheduled{0}, started{0}, executed{0}, failed{0}, cancelled{0},
      rejected{0};
};

struct TaskState {
  enum Status : int { kPending, kRunning, kDone, kCancelled };
  TaskState(Task t, std::shared_ptr<TaskCounters> c, Status initial)
      : status(initial), task(std::move(t)), counters(std::move(c)) {}
  // Exactly one of run/cancel wins the CAS out of kPending; only the winner touches `task`.
  std::atomic<int> status;
  Task task;
  const std::shared_ptr<TaskCounters> counters;
};

class TimerQueue {
 public:
  // Adds a task; returns its handle.
  TaskHandle push(TimePoint due, Task task);
  // Counts a task refused by a scheduler that is shutting down; returns a cancelled handle.
  TaskHandle reject();

  // The earliest deadline of a live task (cancelled tasks are dropped on the way).
  std::optional<TimePoint> next_due();
  // Pops the earliest live task due at or before `now`, marked running; nullptr when none.
  std::shared_ptr<TaskState> pop_due(TimePoint now);
  // Runs a popped task, recording its outcome. Returns false when it threw.
  bool run(const std::shared_ptr<TaskState>& state);
  // Cancels every pending task; returns how many.
  std::size_t cancel_all();

  SchedulerStats stats() const;
  std::size_t pending() const;

 private:
  struct Entry {
    TimePoint due;
    std::uint64_t sequence;
    std::shared_ptr<TaskState> state;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.due != b.due ? a.due > b.due : a.sequence > b.sequence;
    }
  };
  // REQUIRES: mu_ held.
  void drop_cancelled_top();

  mutable std::mutex mu_;
  std::priority_queue<Entry, std::vector<Entry>, Later> heap_;  // GUARDED_BY(mu_)
  std::uint64_t next_sequence_ = 0;                             // GUARDED_BY(mu_)
  const std::shared_ptr<TaskCounters> counters_ = std::make_shared<TaskCounters>();
};

}  // namespace keel::internal
