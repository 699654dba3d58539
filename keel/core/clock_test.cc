#include "keel/core/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace keel {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualClockTest, StartsAtTheZeroTimePointUnlessGivenAStart) {
  ManualClock zero;
  EXPECT_EQ(zero.now(), TimePoint{});
  ManualClock later(TimePoint{} + seconds(5));
  EXPECT_EQ(later.now(), TimePoint{} + seconds(5));
}

TEST(ManualClockTest, AdvanceAndSetMoveNowAndWallTimeTogether) {
  ManualClock clock;
  const WallTime wall0 = clock.wall_now();
  EXPECT_EQ(wall0, ManualClock::kDefaultWallStart);
  clock.advance(milliseconds(1500));
  EXPECT_EQ(clock.now(), TimePoint{} + milliseconds(1500));
  EXPECT_EQ(clock.wall_now() - wall0, milliseconds(1500));
  clock.set(TimePoint{} + seconds(10));
  EXPECT_EQ(clock.now(), TimePoint{} + seconds(10));
  EXPECT_EQ(clock.wall_now() - wall0, seconds(10));
}

TEST(ManualClockTest, TimeNeverMovesBackwards) {
  ManualClock clock(TimePoint{} + seconds(10));
  EXPECT_THROW(clock.advance(-milliseconds(1)), std::invalid_argument);
  EXPECT_THROW(clock.set(TimePoint{} + seconds(9)), std::invalid_argument);
  EXPECT_EQ(clock.now(), TimePoint{} + seconds(10)) << "a rejected move must not change the time";
}

TEST(ManualClockTest, TimerSourcesFireAtTheirOwnDueTimesInOrder) {
  ManualClock clock;
  std::vector<TimePoint> due = {TimePoint{} + seconds(3), TimePoint{} + seconds(1)};
  std::vector<std::pair<TimePoint, TimePoint>> fired;  // (due, clock.now() while firing)
  auto sub = clock.add_timer_source({
      .next_due = [&]() -> std::optional<TimePoint> {
        if (due.empty()) return std::nullopt;
        return *std::min_element(due.begin(), due.end());
      },
      .fire =
          [&](TimePoint now) {
            auto it = std::min_element(due.begin(), due.end());
            fired.emplace_back(*it, clock.now());
            EXPECT_EQ(now, clock.now());
            due.erase(it);
          },
  });
  clock.advance(seconds(10));
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[0].first, TimePoint{} + seconds(1));
  EXPECT_EQ(fired[0].second, TimePoint{} + seconds(1)) << "the clock must step to each deadline";
  EXPECT_EQ(fired[1].second, TimePoint{} + seconds(3));
  EXPECT_EQ(clock.now(), TimePoint{} + seconds(10));
}

TEST(ManualClockTest, DetachedTimerSourceIsNotCalled) {
  ManualClock clock;
  int calls = 0;
  auto sub = clock.add_timer_source({
      .next_due = [&]() -> std::optional<TimePoint> {
        ++calls;
        return clock.now();
      },
      .fire = [&](TimePoint) { ++calls; },
  });
  sub.unsubscribe();
  clock.advance(seconds(1));
  EXPECT_EQ(calls, 0);
}

TEST(ManualClockTest, TimerSourceNeedsBothFunctions) {
  ManualClock clock;
  EXPECT_THROW(clock.add_timer_source({.next_due = {}, .fire = [](TimePoint) {}}),
               std::invalid_argument);
  EXPECT_THROW(
      clock.add_timer_source({.next_due = [] { return std::optional<TimePoint>{}; }, .fire = {}}),
      std::invalid_argument);
}

TEST(ManualClockTest, ConcurrentAdvancesAddUp) {
  ManualClock clock;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) clock.advance(milliseconds(1));
    });
  }
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    TimePoint last = clock.now();
    while (!stop.load()) {
      const TimePoint now = clock.now();
      EXPECT_GE(now, last) << "now() went backwards";
      last = now;
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  EXPECT_EQ(clock.now(), TimePoint{} + milliseconds(4000));
}

TEST(SteadyClockTest, DefaultClockIsMonotonic) {
  const Clock& clock = default_clock();
  const TimePoint a = clock.now();
  const TimePoint b = clock.now();
  EXPECT_LE(a, b);
  EXPECT_GT(clock.wall_now().time_since_epoch().count(), 0);
}

}  // namespace
}  // namespace keel
