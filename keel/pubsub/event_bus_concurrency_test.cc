// Asynchronous delivery and unsubscribing while messages flow. Runs under TSan.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <bit>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/internal/log.h"
#include "keel/pubsub/event_bus.h"

namespace keel::pubsub {
namespace {

TEST(EventBusConcurrencyTest, AsynchronousDeliveryKeepsPublishOrderPerSubscription) {
  EventBus bus({.delivery = Delivery::asynchronous, .workers = 3});
  std::mutex mutex;
  std::vector<std::uint64_t> a, b;
  Subscription sa = bus.subscribe("t", [&](const Message& m) {
    std::lock_guard lock(mutex);
    a.push_back(m.sequence);
  });
  Subscription sb = bus.subscribe("t", [&](const Message& m) {
    std::lock_guard lock(mutex);
    b.push_back(m.sequence);
  });
  for (int i = 0; i < 2000; ++i) bus.publish("t", "");
  bus.flush();
  std::lock_guard lock(mutex);
  ASSERT_EQ(a.size(), 2000U);
  ASSERT_EQ(b.size(), 2000U);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(bus.metrics().delivered, 4000U);
}

TEST(EventBusConcurrencyTest, AFullQueueDropsTheOldestOrFailsThePublishAndCountsIt) {
  EventBus bus({.delivery = Delivery::asynchronous, .workers = 1});
  std::atomic<bool> release{false};
  std::atomic<int> got{0};
  Subscription slow = bus.subscribe("t",
                                    [&](const Message&) {
                                      while (!release) std::this_thread::yield();
                                      ++got;
                                    },
                                    {.queue_capacity = 2, .overflow = OverflowPolicy::drop_oldest});
  for (int i = 0; i < 10; ++i) bus.publish("t", "");
  release = true;
  bus.flush();
  const BusMetrics m = bus.metrics();
  EXPECT_EQ(static_cast<std::uint64_t>(got.load()) + m.dropped, 10U);
  EXPECT_GE(m.dropped, 7U) << "one in the handler, two queued, the rest dropped";

  std::atomic<bool> release2{false};
  Subscription strict =
      bus.subscribe("u",
                    [&](const Message&) {
                      while (!release2) std::this_thread::yield();
                    },
                    {.name = "strict", .queue_capacity = 1, .overflow = OverflowPolicy::fail});
  int failures = 0;
  for (int i = 0; i < 5; ++i) {
    try {
      bus.publish("u", "");
    } catch (const PublishFailed& e) {
      ++failures;
      EXPECT_EQ(e.subscriptions(), std::vector<std::string>{"strict"});
    }
  }
  release2 = true;
  bus.flush();
  EXPECT_GE(failures, 3);
}

TEST(EventBusConcurrencyTest, AnOverloadedSubscriptionLogsItsDropsSparselyButCountsEveryOne) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::logger& logger = keel::internal::logger();
  logger.sinks().push_back(sink);
  {
    EventBus bus({.delivery = Delivery::asynchronous, .workers = 1});
    std::atomic<bool> release{false};
    Subscription slow = bus.subscribe("t",
                                      [&](const Message&) {
                                        while (!release) std::this_thread::yield();
                                      },
                                      {.name = "slow",
                                       .queue_capacity = 2,
                                       .overflow = OverflowPolicy::drop_oldest});
    for (int i = 0; i < 1000; ++i) bus.publish("t", "");
    release = true;
    bus.flush();
    const std::uint64_t dropped = bus.metrics().dropped;
    ASSERT_GE(dropped, 900U);
    logger.flush();
    const std::string text = log.str();
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = text.find("dropped its oldest", at)) != std::string::npos; ++at)
      ++lines;
    // One line at each power of two up to the total: 1, 2, 4, ..., not one per message.
    EXPECT_EQ(lines, static_cast<std::size_t>(std::bit_width(dropped)));
  }
  logger.sinks().pop_back();
}

TEST(EventBusConcurrencyTest, AfterUnsubscribeReturnsTheHandlerIsNeverCalled) {
  EventBus bus({.delivery = Delivery::asynchronous, .workers = 2});
  for (int round = 0; round < 20; ++round) {
    std::atomic<bool> unsubscribed{false};
    std::atomic<int> late_calls{0};
    Subscription s = bus.subscribe("t", [&](const Message&) {
      if (unsubscribed) ++late_calls;
    });
    std::thread publisher([&] {
      for (int i = 0; i < 200; ++i) bus.publish("t", "");
    });
    std::this_thread::yield();
    s.unsubscribe();
    unsubscribed = true;
    publisher.join();
    bus.flush();
    EXPECT_EQ(late_calls.load(), 0);
  }
}

TEST(EventBusConcurrencyTest, SynchronousPublishersOnManyThreads) {
  EventBus bus;
  std::atomic<int> calls{0};
  Subscription s = bus.subscribe("x.*", [&](const Message&) { ++calls; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) bus.publish("x.y", "");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 4000);
  EXPECT_EQ(bus.metrics().published, 4000U);
}

}  // namespace
}  // namespace keel::pubsub
