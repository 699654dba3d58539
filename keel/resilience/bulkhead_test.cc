// Bulkhead on a ManualClock. Waiting tests run the waiter on a thread and move the clock or free
// a slot from the test; they never sleep.
#include "keel/resilience/bulkhead.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace keel::resilience {
namespace {

using std::chrono::seconds;

BulkheadConfig config(int max_concurrent_calls, Duration max_wait = Duration::zero()) {
  return {.name = "payments", .max_concurrent_calls = max_concurrent_calls, .max_wait = max_wait};
}

// Spins (yielding, never sleeping) until `done()`; a hang is caught by the ctest timeout.
template <class Done>
void spin_until(Done done) {
  while (!done()) std::this_thread::yield();
}

TEST(BulkheadTest, AdmitsMaxConcurrentCallsAndRejectsTheNextWithoutCallingIt) {
  ManualClock clock;
  Bulkhead bulkhead(config(2), clock);
  bool third_called = false;
  bulkhead.call([&] {
    bulkhead.call([&] {
      EXPECT_EQ(bulkhead.metrics().in_flight, 2);
      try {
        bulkhead.call([&] { third_called = true; });
        ADD_FAILURE() << "expected BulkheadFull with 2 calls in flight";
      } catch (const BulkheadFull& e) {
        EXPECT_EQ(e.bulkhead(), "payments");
        EXPECT_STREQ(e.what(), "bulkhead 'payments' is full");
      }
    });
  });
  EXPECT_FALSE(third_called);
  const BulkheadMetrics m = bulkhead.metrics();
  EXPECT_EQ(m.admitted, 2u);
  EXPECT_EQ(m.rejected, 1u);
  EXPECT_EQ(m.in_flight, 0);
  EXPECT_EQ(m.peak_in_flight, 2);
  EXPECT_EQ(m.max_concurrent_calls, 2);
}

TEST(BulkheadTest, ReleasesTheSlotWhenTheCallThrows) {
  ManualClock clock;
  Bulkhead bulkhead(config(1), clock);
  EXPECT_THROW(bulkhead.call([]() -> int { throw std::runtime_error("declined"); }),
               std::runtime_error);
  EXPECT_EQ(bulkhead.metrics().in_flight, 0);
  EXPECT_EQ(bulkhead.call([] { return 1; }), 1) << "the slot is free again";
}

TEST(BulkheadTest, PassesArgumentsAndResultsThrough) {
  ManualClock clock;
  Bulkhead bulkhead(config(1), clock);
  auto owned = bulkhead.call([](std::unique_ptr<int> p) { return p; }, std::make_unique<int>(7));
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
  int balance = 0;
  int& same = bulkhead.call([](int& b) -> int& { return b; }, balance);
  EXPECT_EQ(&same, &balance);
}

TEST(BulkheadTest, PermissionsCanBeTakenAndReleasedByHand) {
  ManualClock clock;
  Bulkhead bulkhead(config(1), clock);
  ASSERT_TRUE(bulkhead.try_acquire_permission());
  EXPECT_FALSE(bulkhead.try_acquire_permission());
  bulkhead.release_permission();
  EXPECT_TRUE(bulkhead.try_acquire_permission());
  bulkhead.release_permission();
  EXPECT_THROW(bulkhead.release_permission(), std::logic_error) << "nothing left to release";
  EXPECT_EQ(bulkhead.metrics().admitted, 2u);
  EXPECT_EQ(bulkhead.metrics().rejected, 1u);
}

TEST(BulkheadTest, AWaiterIsAdmittedWhenASlotIsReleased) {
  ManualClock clock;
  Bulkhead bulkhead(config(1, seconds(5)), clock);
  ASSERT_TRUE(bulkhead.try_acquire_permission());
  std::atomic<bool> ran{false};
  std::thread waiter([&] { bulkhead.call([&] { ran = true; }); });
  spin_until([&] { return bulkhead.metrics().waiting == 1; });
  EXPECT_FALSE(ran.load());
  bulkhead.release_permission();
  waiter.join();
  EXPECT_TRUE(ran.load()) << "the clock never moved: the release alone let the waiter in";
  const BulkheadMetrics m = bulkhead.metrics();
  EXPECT_EQ(m.admitted, 2u);
  EXPECT_EQ(m.rejected, 0u);
  EXPECT_EQ(m.waiting, 0);
}

TEST(BulkheadTest, AWaiterIsRejectedWhenTheClockPassesItsDeadline) {
  ManualClock clock;
  Bulkhead bulkhead(config(1, seconds(5)), clock);
  ASSERT_TRUE(bulkhead.try_acquire_permission());
  std::atomic<bool> ran{false};
  std::atomic<bool> rejected{false};
  std::thread waiter([&] {
    try {
      bulkhead.call([&] { ran = true; });
    } catch (const BulkheadFull&) {
      rejected = true;
    }
  });
  spin_until([&] { return bulkhead.metrics().waiting == 1; });
  clock.advance(seconds(5) - Duration(1));
  EXPECT_FALSE(rejected.load()) << "rejected before its deadline";
  clock.advance(Duration(1));
  waiter.join();
  EXPECT_TRUE(rejected.load());
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(bulkhead.metrics().rejected, 1u);
  EXPECT_EQ(bulkhead.metrics().waiting, 0);
  bulkhead.release_permission();
}

TEST(BulkheadTest, InvalidConfigsAreRejectedNamingTheField) {
  EXPECT_THROW(
      {
        try {
          Bulkhead bulkhead(config(0));
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("max_concurrent_calls"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  EXPECT_THROW(
      {
        try {
          Bulkhead bulkhead(config(1, Duration(-1)));
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("max_wait"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  EXPECT_NO_THROW(BulkheadConfig{}.validate());
}

TEST(BulkheadTest, RegisterMetricsExposesTheLoadAndTheOutcomes) {
  ManualClock clock;
  Bulkhead bulkhead(config(3), clock);
  ASSERT_TRUE(bulkhead.try_acquire_permission());
  MetricsRegistry registry;
  Subscription sub = bulkhead.register_metrics(registry);
  const std::string page = registry.render();
  for (const char* series :
       {R"(keel_bulkhead_calls_total{bulkhead="payments",outcome="admitted"} 1)",
        R"(keel_bulkhead_calls_total{bulkhead="payments",outcome="rejected"} 0)",
        R"(keel_bulkhead_in_flight{bulkhead="payments"} 1)",
        R"(keel_bulkhead_waiting{bulkhead="payments"} 0)",
        R"(keel_bulkhead_max_concurrent_calls{bulkhead="payments"} 3)"}) {
    EXPECT_NE(page.find(series), std::string::npos) << series << " in\n" << page;
  }
  bulkhead.release_permission();
}

}  // namespace
}  // namespace keel::resilience
