// EventPoller on a ManualScheduler: polls at the interval, wake() polls at once, polls that
// throw are counted and polling goes on, stop() ends it. Events from another process: see
// keel/sqlite/event_store_test.cc (two stores on one file) and keel/postgres/event_store_test.cc
// (LISTEN/NOTIFY).
#include "keel/cqrs/event_poller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <vector>

#include "keel/core/scheduler.h"
#include "keel/cqrs/event_store.h"

namespace keel::cqrs {
namespace {

using std::chrono::milliseconds;

class EventPollerTest : public ::testing::Test {
 protected:
  // A poll function that counts its calls (and runs `during_poll` when set).
  std::function<void()> counting() {
    return [this] {
      ++polls_;
      if (during_poll_) during_poll_();
    };
  }

  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  int polls_ = 0;
  std::function<void()> during_poll_;
};

TEST_F(EventPollerTest, PollsOnceEveryIntervalAfterThePreviousPoll) {
  EventPoller poller(scheduler_, counting(), {.interval = milliseconds(100)});
  clock_.advance(milliseconds(99));
  EXPECT_EQ(polls_, 0) << "the first poll comes one interval after construction";
  clock_.advance(milliseconds(1));
  EXPECT_EQ(polls_, 1);
  clock_.advance(milliseconds(1000));
  EXPECT_EQ(polls_, 11);
  EXPECT_EQ(poller.metrics().polls, 11U);
  EXPECT_EQ(scheduler_.pending(), 1U) << "one poll scheduled at a time";
}

TEST_F(EventPollerTest, AWakePollsAtOnceAndTheIntervalStartsAgainAfterIt) {
  EventPoller poller(scheduler_, counting(), {.interval = milliseconds(100)});
  clock_.advance(milliseconds(30));
  poller.wake();
  poller.wake();  // coalesced with the one due now
  scheduler_.run_due();
  EXPECT_EQ(polls_, 1);
  EXPECT_EQ(scheduler_.pending(), 1U);
  clock_.advance(milliseconds(99));
  EXPECT_EQ(polls_, 1) << "the poll due at 100 ms was replaced by the wake";
  clock_.advance(milliseconds(1));
  EXPECT_EQ(polls_, 2);
  EXPECT_EQ(poller.metrics().wakes, 2U);
}

TEST_F(EventPollerTest, AWakeDuringAPollMakesOneMorePollRightAfterIt) {
  EventPoller* self = nullptr;
  during_poll_ = [&] {
    if (polls_ == 1) {
      self->wake();  // e.g. a notification arrives while the poll reads the log
      self->wake();
    }
  };
  EventPoller poller(scheduler_, counting(), {.interval = milliseconds(100)});
  self = &poller;
  clock_.advance(milliseconds(100));
  EXPECT_EQ(polls_, 2) << "the poll again, at once, and only once";
  clock_.advance(milliseconds(99));
  EXPECT_EQ(polls_, 2);
  clock_.advance(milliseconds(1));
  EXPECT_EQ(polls_, 3);
}

TEST_F(EventPollerTest, APollThatThrowsIsCountedAndPollingGoesOn) {
  during_poll_ = [&] {
    if (polls_ == 1) throw std::runtime_error("the database is away");
  };
  EventPoller poller(scheduler_, counting(), {.interval = milliseconds(10)});
  clock_.advance(milliseconds(30));
  EXPECT_EQ(polls_, 3);
  EXPECT_EQ(poller.metrics().failures, 1U);
  EXPECT_EQ(poller.metrics().polls, 2U);
}

TEST_F(EventPollerTest, StopEndsPollingAndWakesAfterItDoNothing) {
  EventPoller poller(scheduler_, counting(), {.interval = milliseconds(10)});
  clock_.advance(milliseconds(10));
  poller.stop();
  poller.wake();
  clock_.advance(milliseconds(100));
  EXPECT_EQ(polls_, 1);
  EXPECT_EQ(scheduler_.pending(), 0U);
  poller.stop();  // idempotent
}

TEST_F(EventPollerTest, APollerDestroyedWithAPollScheduledNeverPollsAgain) {
  {
    EventPoller poller(scheduler_, counting(), {.interval = milliseconds(10)});
    poller.wake();
  }
  clock_.advance(milliseconds(100));
  EXPECT_EQ(polls_, 0);
}

TEST_F(EventPollerTest, ItPollsAStoreThroughDeliverNewEvents) {
  class CountingStore final : public EventStore {
   public:
    AppendResult append(std::string_view, ExpectedVersion, std::span<const NewEvent>) override {
      return {};
    }
    std::vector<RecordedEvent> read_stream(std::string_view, std::uint64_t, std::size_t) override {
      return {};
    }
    std::vector<RecordedEvent> read_all(std::uint64_t, std::size_t) override { return {}; }
    std::uint64_t stream_version(std::string_view) override { return 0; }
    Subscription subscribe_all(std::uint64_t, EventHandler) override { return {}; }
    void deliver_new_events() override { ++delivered; }
    int delivered = 0;
  } store;
  EventPoller poller(scheduler_, store, {.interval = milliseconds(50)});
  clock_.advance(milliseconds(200));
  EXPECT_EQ(store.delivered, 4);

  InMemoryEventStore memory;
  memory.deliver_new_events();  // no other writer: nothing to do, and nothing goes wrong
}

TEST_F(EventPollerTest, BadOptionsThrowInvalidArgument) {
  EXPECT_THROW(EventPoller(scheduler_, counting(), {.interval = milliseconds(0)}),
               std::invalid_argument);
  EXPECT_THROW(EventPoller(scheduler_, counting(), {.interval = milliseconds(-1)}),
               std::invalid_argument);
  EXPECT_THROW(EventPoller(scheduler_, std::function<void()>{}), std::invalid_argument);
}

}  // namespace
}  // namespace keel::cqrs
