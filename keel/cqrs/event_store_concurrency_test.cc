// InMemoryEventStore under concurrent appenders, readers and subscribers, the read side (a
// projection rebuilt while appends run) and the EventPoller woken from many threads. Runs under
// TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/scheduler.h"
#include "keel/cqrs/bank_account_test.h"
#include "keel/cqrs/event_poller.h"
#include "keel/cqrs/projection.h"

#include "keel/cqrs/event_store.h"
#include "keel/cqrs/event_store_conformance.h"

namespace keel::cqrs {
namespace testing {
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(EventStoreConformanceTest);  // runs in keel_cqrs_test
}  // namespace testing
namespace {

using testing::EventStoreCase;
using testing::EventStoreConcurrencyTest;

INSTANTIATE_TEST_SUITE_P(
    Memory, EventStoreConcurrencyTest,
    ::testing::Values(EventStoreCase{
        "memory", [](ManualClock& clock) { return std::make_unique<InMemoryEventStore>(clock); }}),
    testing::event_store_case_name);

using testing::event;

// Appends `count` deposits of 1 to account-<thread> from each of `threads` threads.
void deposit_concurrently(EventStore& store, int threads, int count) {
  std::vector<std::thread> appenders;
  for (int t = 0; t < threads; ++t) {
    appenders.emplace_back([&store, t, count] {
      const std::vector<NewEvent> deposit{event("Deposited", R"({"amount":1})")};
      for (int i = 0; i < count; ++i) {
        store.append("account-" + std::to_string(t), ExpectedVersion::any(), deposit);
      }
    });
  }
  for (std::thread& appender : appenders) appender.join();
}

TEST(EventStoreConcurrencyTest, CatchUpRunsOnTheSubscribingThreadWhileOthersAppend) {
  InMemoryEventStore store;
  const std::vector<NewEvent> deposit{event("Deposited", R"({"amount":1})")};
  for (int i = 0; i < 2000; ++i) store.append("account-a", ExpectedVersion::any(), deposit);
  std::atomic<bool> stop{false};
  std::thread appender([&] {
    while (!stop) store.append("account-b", ExpectedVersion::any(), deposit);
  });
  const std::thread::id me = std::this_thread::get_id();
  std::atomic<std::uint64_t> handled_here{0};
  std::atomic<std::uint64_t> stored_elsewhere{0};  // positions <= 2000 handled by another thread
  Subscription subscription = store.subscribe_all(0, [&](const RecordedEvent& e) {
    if (std::this_thread::get_id() == me) {
      ++handled_here;
    } else if (e.position <= 2000) {
      ++stored_elsewhere;
    }
  });
  // Everything stored before the call was delivered by this thread, before it returned (not
  // inside the other thread's appends).
  EXPECT_GE(handled_here.load(), 2000u);
  EXPECT_EQ(stored_elsewhere.load(), 0u);
  stop = true;
  appender.join();
  subscription.unsubscribe();
}

TEST(EventStoreConcurrencyTest, AfterUnsubscribeReturnsTheHandlerIsNeverCalledAgain) {
  InMemoryEventStore store;
  std::atomic<bool> unsubscribed{false};
  std::atomic<int> calls_after{0};
  std::atomic<int> calls{0};
  Subscription subscription = store.subscribe_all(0, [&](const RecordedEvent&) {
    if (unsubscribed) ++calls_after;
    ++calls;
  });
  std::thread unsubscriber([&] {
    while (calls < 50) std::this_thread::yield();
    subscription.unsubscribe();
    unsubscribed = true;
  });
  deposit_concurrently(store, 3, 200);
  unsubscriber.join();
  EXPECT_EQ(calls_after, 0);
  EXPECT_EQ(store.metrics().subscriptions, 0U);
}

TEST(ProjectionConcurrencyTest, AProjectionRebuiltWhileAppendsRunEndsExact) {
  InMemoryEventStore store;
  testing::Balances balances;
  ProjectionRunner runner(store, balances);
  runner.start();
  std::atomic<bool> done{false};
  std::thread rebuilder([&] {
    for (int i = 0; i < 5 && !done; ++i) runner.rebuild();
  });
  deposit_concurrently(store, 3, 300);
  done = true;
  rebuilder.join();
  EXPECT_EQ(balances.all(), (std::map<std::string, std::int64_t>{
                                {"account-0", 300}, {"account-1", 300}, {"account-2", 300}}))
      << "every event applied once, whatever the rebuilds interleaved";
  EXPECT_EQ(balances.checkpoint(), 900U);
}

TEST(EventPollerConcurrencyTest, WakesFromManyThreadsNeverMakeTwoPollsAtOnce) {
  ThreadPoolScheduler scheduler(2);  // two workers: overlapping polls would be possible
  std::atomic<int> in_poll{0};
  std::atomic<bool> overlapped{false};
  std::atomic<int> polls{0};
  std::promise<void> polled_after_the_wakes;
  std::atomic<bool> wakes_done{false};
  std::atomic<bool> promised{false};
  EventPoller poller(scheduler,
                     [&] {
                       if (in_poll.fetch_add(1) != 0) overlapped = true;
                       std::this_thread::yield();
                       ++polls;
                       if (wakes_done && !promised.exchange(true))
                         polled_after_the_wakes.set_value();
                       in_poll.fetch_sub(1);
                     },
                     {.interval = std::chrono::hours(1)});
  std::vector<std::thread> wakers;
  for (int t = 0; t < 4; ++t) {
    wakers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) poller.wake();
    });
  }
  for (std::thread& waker : wakers) waker.join();
  wakes_done = true;
  poller.wake();
  ASSERT_EQ(polled_after_the_wakes.get_future().wait_for(std::chrono::seconds(30)),
            std::future_status::ready)
      << "a wake after the others polls";
  poller.stop();
  EXPECT_FALSE(overlapped) << "one poll at a time";
  EXPECT_GE(polls.load(), 1);
  EXPECT_LE(polls.load(), 2001) << "wakes coalesce; never more polls than wakes";
  EXPECT_EQ(poller.metrics().wakes, 2001U);
}

}  // namespace
}  // namespace keel::cqrs
