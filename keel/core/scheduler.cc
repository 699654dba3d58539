#include "keel/core/scheduler.h"

#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "keel/core/internal/log.h"
#include "keel/core/internal/timer_queue.h"

namespace keel {
namespace internal {

TaskHandle TimerQueue::push(TimePoint due, Task task) {
  if (!task) throw std::invalid_argument("Scheduler: empty task");
  auto state = std::make_shared<TaskState>(std::move(task), counters_, TaskState::kPending);
  {
    std::lock_guard lock(mu_);
    heap_.push(Entry{due, next_sequence_++, state});
  }
  counters_->scheduled.fetch_add(1, std::memory_order_relaxed);
  return TaskHandle(state);
}

TaskHandle TimerQueue::reject() {
  counters_->rejected.fetch_add(1, std::memory_order_relaxed);
  return TaskHandle(std::make_shared<TaskState>(Task{}, counters_, TaskState::kCancelled));
}

void TimerQueue::drop_cancelled_top() {
  while (!heap_.empty() &&
         heap_.top().state->status.load(std::memory_order_acquire) == TaskState::kCancelled) {
    heap_.pop();
  }
}

std::optional<TimePoint> TimerQueue::next_due() {
  std::lock_guard lock(mu_);
  drop_cancelled_top();
  if (heap_.empty()) return std::nullopt;
  return heap_.top().due;
}

std::shared_ptr<TaskState> TimerQueue::pop_due(TimePoint now) {
  std::lock_guard lock(mu_);
  while (!heap_.empty() && heap_.top().due <= now) {
    auto state = heap_.top().state;
    heap_.pop();
    int expected = TaskState::kPending;
    if (state->status.compare_exchange_strong(expected, TaskState::kRunning,
                                              std::memory_order_acq_rel)) {
      counters_->started.fetch_add(1, std::memory_order_relaxed);
      return state;
    }
  }
  return nullptr;
}

bool TimerQueue::run(const std::shared_ptr<TaskState>& state) {
  bool ok = true;
  try {
    state->task();
  } catch (const std::exception& e) {
    ok = false;
    logger().warn("scheduled task threw: {}", e.what());
  } catch (...) {
    ok = false;
    logger().warn("scheduled task threw a non-standard exception");
  }
  state->task = nullptr;  // release captures now, not when the last handle goes
  state->status.store(TaskState::kDone, std::memory_order_release);
  if (!ok) counters_->failed.fetch_add(1, std::memory_order_relaxed);
  counters_->executed.fetch_add(1, std::memory_order_relaxed);
  return ok;
}

std::size_t TimerQueue::cancel_all() {
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mu_);
    while (!heap_.empty()) {
      entries.push_back(heap_.top());
      heap_.pop();
    }
  }
  std::size_t cancelled = 0;
  for (auto& entry : entries) {
    if (TaskHandle(entry.state).cancel()) ++cancelled;
  }
  return cancelled;
}

SchedulerStats TimerQueue::stats() const {
  const auto& c = *counters_;
  SchedulerStats s;
  s.scheduled = c.scheduled.load(std::memory_order_relaxed);
  s.executed = c.executed.load(std::memory_order_relaxed);
  s.failed = c.failed.load(std::memory_order_relaxed);
  s.cancelled = c.cancelled.load(std::memory_order_relaxed);
  s.rejected = c.rejected.load(std::memory_order_relaxed);
  const auto started = c.started.load(std::memory_order_relaxed);
  // Loads are not one snapshot; clamp so a racing reader never sees a wrapped count.
  s.pending = s.scheduled > started + s.cancelled ? s.scheduled - started - s.cancelled : 0;
  return s;
}

std::size_t TimerQueue::pending() const { return stats().pending; }

}  // namespace internal

bool TaskHandle::cancel() noexcept {
  if (!state_) return false;
  int expected = internal::TaskState::kPending;
  if (!state_->status.compare_exchange_strong(expected, internal::TaskState::kCancelled,
                                              std::memory_order_acq_rel)) {
    return false;
  }
  state_->task = nullptr;
  state_->counters->cancelled.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool TaskHandle::pending() const noexcept {
  return state_ && state_->status.load(std::memory_order_acquire) == internal::TaskState::kPending;
}

bool TaskHandle::done() const noexcept {
  return state_ && state_->status.load(std::memory_order_acquire) == internal::TaskState::kDone;
}

bool TaskHandle::cancelled() const noexcept {
  return state_ &&
         state_->status.load(std::memory_order_acquire) == internal::TaskState::kCancelled;
}

TaskHandle Scheduler::schedule_after(Duration delay, Task task) {
  if (delay < Duration::zero()) {
    throw std::invalid_argument(fmt::format("Scheduler::schedule_after: negative delay {}", delay));
  }
  return schedule_at(clock().now() + delay, std::move(task));
}

// ---- ThreadPoolScheduler ----

namespace {
thread_local const void* current_pool = nullptr;  // the pool whose worker this thread is
}  // namespace

ThreadPoolScheduler::ThreadPoolScheduler(std::size_t workers, const Clock& clock)
    : clock_(clock), queue_(std::make_unique<internal::TimerQueue>()) {
  if (workers == 0) throw std::invalid_argument("ThreadPoolScheduler: workers must be >= 1");
  workers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPoolScheduler::~ThreadPoolScheduler() { shutdown(ShutdownMode::cancel); }

TaskHandle ThreadPoolScheduler::schedule_at(TimePoint due, Task task) {
  if (!task) throw std::invalid_argument("ThreadPoolScheduler::schedule_at: empty task");
  std::unique_lock lock(mu_);
  if (stopping_) return queue_->reject();
  auto handle = queue_->push(due, std::move(task));
  lock.unlock();
  // Every worker may be waiting for a later deadline; each re-reads the heap when woken.
  wake_.notify_all();
  return handle;
}

void ThreadPoolScheduler::work() {
  current_pool = this;
  std::unique_lock lock(mu_);
  for (;;) {
    auto due = queue_->next_due();
    if (!due) {
      if (stopping_) return;  // drained (or cancelled): nothing left to run
      wake_.wait(lock);
      continue;
    }
    const TimePoint now = clock_.now();
    if (*due > now) {
      // Deadlines are on clock_, waits in real time: wait for the remaining interval.
      wake_.wait_for(lock, *due - now);
      continue;
    }
    auto task = queue_->pop_due(now);
    if (!task) continue;
    lock.unlock();
    queue_->run(task);
    lock.lock();
  }
}

void ThreadPoolScheduler::shutdown(ShutdownMode mode) {
  if (current_pool == this) {
    throw std::logic_error("ThreadPoolScheduler::shutdown called from one of its own tasks");
  }
  std::lock_guard join_lock(join_mu_);
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      if (mode == ShutdownMode::cancel) queue_->cancel_all();
    }
  }
  wake_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

SchedulerStats ThreadPoolScheduler::stats() const { return queue_->stats(); }

// ---- ManualScheduler ----

ManualScheduler::ManualScheduler(ManualClock& clock)
    : clock_(clock), queue_(std::make_unique<internal::TimerQueue>()) {
  timer_source_ = clock_.add_timer_source({
      .next_due = [this] { return queue_->next_due(); },
      .fire =
          [this](TimePoint now) {
            while (auto task = queue_->pop_due(now)) queue_->run(task);
          },
  });
}

ManualScheduler::~ManualScheduler() { timer_source_.unsubscribe(); }

TaskHandle ManualScheduler::schedule_at(TimePoint due, Task task) {
  return queue_->push(due, std::move(task));
}

SchedulerStats ManualScheduler::stats() const { return queue_->stats(); }

void ManualScheduler::run_due() { clock_.advance(Duration::zero()); }

std::size_t ManualScheduler::pending() const { return queue_->pending(); }

}  // namespace keel
