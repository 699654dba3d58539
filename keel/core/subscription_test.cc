#include "keel/core/subscription.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "keel/core/listener_set.h"

namespace keel {
namespace {

TEST(SubscriptionTest, UnsubscribeRunsDetachOnceAndIsIdempotent) {
  int detached = 0;
  Subscription sub([&] { ++detached; });
  EXPECT_TRUE(sub.active());
  sub.unsubscribe();
  sub.unsubscribe();
  EXPECT_FALSE(sub.active());
  EXPECT_EQ(detached, 1);
}

TEST(SubscriptionTest, DestructionUnsubscribes) {
  int detached = 0;
  {
    Subscription sub([&] { ++detached; });
  }
  EXPECT_EQ(detached, 1);
}

TEST(SubscriptionTest, MoveTransfersOwnership) {
  int detached = 0;
  Subscription a([&] { ++detached; });
  Subscription b = std::move(a);
  EXPECT_FALSE(a.active());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  a.unsubscribe();
  EXPECT_EQ(detached, 0);
  Subscription c;
  c = std::move(b);
  EXPECT_EQ(detached, 0);
  c = Subscription();
  EXPECT_EQ(detached, 1) << "assigning over an active subscription unsubscribes it";
}

TEST(SubscriptionTest, AllEndsEveryPartInReverseOrder) {
  std::vector<int> ended;
  std::vector<Subscription> parts;
  for (int i = 0; i < 3; ++i) parts.emplace_back([&ended, i] { ended.push_back(i); });
  Subscription all = Subscription::all(std::move(parts));
  EXPECT_TRUE(ended.empty());
  all.unsubscribe();
  EXPECT_EQ(ended, (std::vector<int>{2, 1, 0}));
}

TEST(ListenerSetTest, NotifiesInOrderUntilUnsubscribed) {
  ListenerSet<int> listeners;
  std::vector<std::pair<char, int>> seen;
  auto a = listeners.add([&](int v) { seen.emplace_back('a', v); });
  auto b = listeners.add([&](int v) { seen.emplace_back('b', v); });
  listeners.notify(1);
  a.unsubscribe();
  listeners.notify(2);
  EXPECT_EQ(seen, (std::vector<std::pair<char, int>>{{'a', 1}, {'b', 1}, {'b', 2}}));
  EXPECT_EQ(listeners.size(), 1u);
}

TEST(ListenerSetTest, ThrowingListenerDoesNotStopTheOthers) {
  ListenerSet<> listeners;
  int calls = 0;
  auto a = listeners.add([] { throw std::runtime_error("boom"); });
  auto b = listeners.add([&] { ++calls; });
  const auto errors = listeners.notify();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THROW(std::rethrow_exception(errors[0]), std::runtime_error);
  EXPECT_EQ(calls, 1);
}

TEST(ListenerSetTest, ListenerMayUnsubscribeItselfFromInsideTheCallback) {
  ListenerSet<> listeners;
  int calls = 0;
  Subscription sub;
  sub = listeners.add([&] {
    ++calls;
    sub.unsubscribe();  // must not deadlock waiting for itself
  });
  listeners.notify();
  listeners.notify();
  EXPECT_EQ(calls, 1);
}

TEST(ListenerSetTest, EmptyCallbackIsRejected) {
  ListenerSet<int> listeners;
  EXPECT_THROW(listeners.add(nullptr), std::invalid_argument);
  EXPECT_TRUE(listeners.empty());
}

TEST(ListenerSetTest, SubscriptionOutlivingTheSetIsHarmless) {
  Subscription sub;
  {
    ListenerSet<> listeners;
    sub = listeners.add([] {});
  }
  sub.unsubscribe();
  EXPECT_FALSE(sub.active());
}

// The Subscription contract under concurrency: once unsubscribe() returns, the callback is not
// running and never runs again, even while other threads notify.
TEST(ListenerSetTest, NoCallbackRunsAfterUnsubscribeReturns) {
  for (int round = 0; round < 50; ++round) {
    ListenerSet<> listeners;
    std::atomic<bool> unsubscribed{false};
    std::atomic<int> late_calls{0};
    std::atomic<int> calls{0};
    auto sub = listeners.add([&] {
      if (unsubscribed.load()) late_calls.fetch_add(1);
      calls.fetch_add(1);
    });
    std::atomic<bool> stop{false};
    std::vector<std::thread> notifiers;
    for (int t = 0; t < 3; ++t) {
      notifiers.emplace_back([&] {
        while (!stop.load()) listeners.notify();
      });
    }
    while (calls.load() < 10) std::this_thread::yield();
    sub.unsubscribe();
    unsubscribed = true;
    const int calls_at_unsubscribe = calls.load();
    for (int i = 0; i < 100; ++i) std::this_thread::yield();
    stop = true;
    for (auto& t : notifiers) t.join();
    EXPECT_EQ(late_calls.load(), 0);
    EXPECT_EQ(calls.load(), calls_at_unsubscribe);
  }
}

}  // namespace
}  // namespace keel
