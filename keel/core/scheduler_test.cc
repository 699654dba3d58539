#include "keel/core/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace keel {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ManualSchedulerTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  std::vector<std::string> log_;

  Task record(const std::string& name) {
    return [this, name] {
      log_.push_back(name + "@" + std::to_string((clock_.now() - TimePoint{}) / milliseconds(1)));
    };
  }
};

TEST_F(ManualSchedulerTest, NothingRunsBeforeItsTime) {
  scheduler_.schedule_after(seconds(1), record("a"));
  clock_.advance(milliseconds(999));
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(scheduler_.pending(), 1u);
  clock_.advance(milliseconds(1));
  EXPECT_EQ(log_, (std::vector<std::string>{"a@1000"}));
  EXPECT_EQ(scheduler_.pending(), 0u);
}

TEST_F(ManualSchedulerTest, RunsInTimeOrderTiesInSubmissionOrderEachAtItsOwnTime) {
  scheduler_.schedule_after(seconds(3), record("c"));
  scheduler_.schedule_after(seconds(1), record("a1"));
  scheduler_.schedule_after(seconds(1), record("a2"));
  scheduler_.schedule_after(seconds(2), record("b"));
  clock_.advance(hours(1));
  EXPECT_EQ(log_, (std::vector<std::string>{"a1@1000", "a2@1000", "b@2000", "c@3000"}));
  EXPECT_EQ(clock_.now(), TimePoint{} + hours(1));
}

TEST_F(ManualSchedulerTest, TasksScheduledByTasksFireInTheSameAdvanceWhenDue) {
  // A retry chain: each attempt schedules the next one 100 ms later.
  std::function<void(int)> attempt = [&](int n) {
    log_.push_back("try" + std::to_string(n) + "@" +
                   std::to_string((clock_.now() - TimePoint{}) / milliseconds(1)));
    if (n < 3) scheduler_.schedule_after(milliseconds(100), [&, n] { attempt(n + 1); });
  };
  scheduler_.schedule_after(milliseconds(0), [&] { attempt(1); });
  scheduler_.schedule_after(milliseconds(150), record("other"));
  clock_.advance(seconds(1));
  EXPECT_EQ(log_, (std::vector<std::string>{"try1@0", "try2@100", "other@150", "try3@200"}));
}

TEST_F(ManualSchedulerTest, TaskDueLaterThanTheAdvanceWaitsForTheNextOne) {
  scheduler_.schedule_after(milliseconds(500),
                            [&] { scheduler_.schedule_after(seconds(1), record("late")); });
  clock_.advance(seconds(1));
  EXPECT_TRUE(log_.empty());
  clock_.advance(milliseconds(500));
  EXPECT_EQ(log_, (std::vector<std::string>{"late@1500"}));
}

TEST_F(ManualSchedulerTest, RunDueRunsTasksDueNowWithoutMovingTime) {
  scheduler_.schedule_after(seconds(0), record("now"));
  scheduler_.schedule_at(TimePoint{} - seconds(5), record("past"));
  EXPECT_TRUE(log_.empty());
  scheduler_.run_due();
  EXPECT_EQ(log_, (std::vector<std::string>{"past@0", "now@0"}));
  EXPECT_EQ(clock_.now(), TimePoint{});
}

TEST_F(ManualSchedulerTest, CancelledTaskNeverRuns) {
  auto handle = scheduler_.schedule_after(seconds(1), record("a"));
  EXPECT_TRUE(handle.pending());
  EXPECT_TRUE(handle.cancel());
  EXPECT_FALSE(handle.cancel()) << "a second cancel reports that nothing was cancelled";
  EXPECT_TRUE(handle.cancelled());
  clock_.advance(seconds(2));
  EXPECT_TRUE(log_.empty());
  const auto stats = scheduler_.stats();
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.executed, 0u);
  EXPECT_EQ(stats.pending, 0u);
}

TEST_F(ManualSchedulerTest, CancelAfterRunReturnsFalse) {
  auto handle = scheduler_.schedule_after(seconds(1), record("a"));
  clock_.advance(seconds(1));
  EXPECT_TRUE(handle.done());
  EXPECT_FALSE(handle.cancel());
}

TEST_F(ManualSchedulerTest, CancellingReleasesTheTaskCapturesAtOnce) {
  auto token = std::make_shared<int>(1);
  auto handle = scheduler_.schedule_after(hours(1), [token] {});
  EXPECT_EQ(token.use_count(), 2);
  handle.cancel();
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(ManualSchedulerTest, ThrowingTaskIsCountedAndDoesNotStopOthers) {
  scheduler_.schedule_after(seconds(1),
                            [] { throw std::runtime_error("task failure (expected)"); });
  scheduler_.schedule_after(seconds(1), record("b"));
  clock_.advance(seconds(1));
  EXPECT_EQ(log_, (std::vector<std::string>{"b@1000"}));
  const auto stats = scheduler_.stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.executed, 2u);
  EXPECT_EQ(stats.scheduled, 2u);
}

TEST_F(ManualSchedulerTest, RejectsBadArguments) {
  EXPECT_THROW(scheduler_.schedule_after(-milliseconds(1), record("x")), std::invalid_argument);
  EXPECT_THROW(scheduler_.schedule_after(seconds(1), Task{}), std::invalid_argument);
}

TEST_F(ManualSchedulerTest, DestroyedSchedulerIsDetachedFromTheClock) {
  ManualClock clock;
  int runs = 0;
  {
    ManualScheduler scheduler(clock);
    scheduler.schedule_after(seconds(1), [&] { ++runs; });
  }
  clock.advance(seconds(2));
  EXPECT_EQ(runs, 0);
}

TEST(ManualSchedulerConcurrencyTest, SchedulingFromManyThreadsWhileAdvancing) {
  ManualClock clock;
  ManualScheduler scheduler(clock);
  std::atomic<int> runs{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) scheduler.schedule_after(milliseconds(i % 7), [&] { ++runs; });
    });
  }
  std::thread advancer([&] {
    for (int i = 0; i < 200; ++i) clock.advance(milliseconds(1));
  });
  for (auto& p : producers) p.join();
  advancer.join();
  clock.advance(seconds(1));
  EXPECT_EQ(runs.load(), 1500);
  EXPECT_EQ(scheduler.stats().executed, 1500u);
}

TEST(ThreadPoolSchedulerTest, RunsTasksOnWorkers) {
  ThreadPoolScheduler scheduler(2);
  std::promise<std::thread::id> ran;
  scheduler.schedule_after(milliseconds(0), [&] { ran.set_value(std::this_thread::get_id()); });
  auto future = ran.get_future();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_NE(future.get(), std::this_thread::get_id());
}

TEST(ThreadPoolSchedulerTest, EarlierTaskOvertakesALaterOne) {
  ThreadPoolScheduler scheduler(1);
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> done;
  scheduler.schedule_after(hours(1), [] {});
  scheduler.schedule_after(milliseconds(1), [&] {
    std::lock_guard lock(mu);
    order.push_back(1);
    done.set_value();
  });
  ASSERT_EQ(done.get_future().wait_for(seconds(10)), std::future_status::ready)
      << "a worker waiting for the 1 h task must wake for the 1 ms one";
  std::lock_guard lock(mu);
  EXPECT_EQ(order, std::vector<int>{1});
}

TEST(ThreadPoolSchedulerTest, DrainRunsEveryScheduledTaskThenRejectsNewOnes) {
  ThreadPoolScheduler scheduler(2);
  std::atomic<int> runs{0};
  for (int i = 0; i < 100; ++i) scheduler.schedule_after(milliseconds(i % 5), [&] { ++runs; });
  scheduler.shutdown(ShutdownMode::drain);
  EXPECT_EQ(runs.load(), 100);
  auto rejected = scheduler.schedule_after(milliseconds(0), [&] { ++runs; });
  EXPECT_TRUE(rejected.cancelled());
  EXPECT_EQ(scheduler.stats().rejected, 1u);
  EXPECT_EQ(scheduler.stats().executed, 100u);
}

TEST(ThreadPoolSchedulerTest, CancelShutdownDropsPendingTasks) {
  ThreadPoolScheduler scheduler(2);
  std::atomic<int> runs{0};
  std::vector<TaskHandle> handles;
  for (int i = 0; i < 10; ++i)
    handles.push_back(scheduler.schedule_after(hours(1), [&] { ++runs; }));
  scheduler.shutdown(ShutdownMode::cancel);
  EXPECT_EQ(runs.load(), 0);
  for (const auto& h : handles) EXPECT_TRUE(h.cancelled());
  EXPECT_EQ(scheduler.stats().cancelled, 10u);
  EXPECT_EQ(scheduler.stats().pending, 0u);
}

TEST(ThreadPoolSchedulerTest, ShutdownFromOwnTaskIsRefused) {
  ThreadPoolScheduler scheduler(1);
  std::promise<bool> threw;
  scheduler.schedule_after(milliseconds(0), [&] {
    try {
      scheduler.shutdown();
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  auto future = threw.get_future();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(future.get());
}

TEST(ThreadPoolSchedulerTest, ManyProducersAndCancellations) {
  ThreadPoolScheduler scheduler(2);
  std::atomic<int> runs{0};
  std::atomic<int> cancelled{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        auto handle = scheduler.schedule_after(milliseconds((i + t) % 3), [&] { ++runs; });
        if (i % 4 == 0 && handle.cancel()) ++cancelled;
      }
    });
  }
  for (auto& p : producers) p.join();
  scheduler.shutdown(ShutdownMode::drain);
  EXPECT_EQ(runs.load() + cancelled.load(), 1000);
  const auto stats = scheduler.stats();
  EXPECT_EQ(stats.executed, static_cast<std::uint64_t>(runs.load()));
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(cancelled.load()));
}

TEST(ThreadPoolSchedulerTest, ZeroWorkersIsRejected) {
  EXPECT_THROW(ThreadPoolScheduler(0), std::invalid_argument);
}

}  // namespace
}  // namespace keel
