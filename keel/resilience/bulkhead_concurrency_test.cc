// Many threads through one Bulkhead never run more than max_concurrent_calls at once, and the
// counters add up. Runs under TSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "keel/resilience/bulkhead.h"

namespace keel::resilience {
namespace {

using std::chrono::hours;

constexpr int kThreads = 8;
constexpr int kCallsPerThread = 2000;
constexpr int kSlots = 3;

// Counts the calls running inside the bulkhead and remembers the most seen at once.
struct Occupancy {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  std::atomic<std::uint64_t> ran{0};

  void enter_and_leave() {
    const int inside = now.fetch_add(1) + 1;
    int seen = peak.load();
    while (inside > seen && !peak.compare_exchange_weak(seen, inside)) {
    }
    std::this_thread::yield();  // stay inside a moment so that calls overlap
    ran.fetch_add(1);
    now.fetch_sub(1);
  }
};

template <class Body>
void run_threads(Body body) {
  std::vector<std::thread> pool;
  pool.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) pool.emplace_back(body);
  for (auto& thread : pool) thread.join();
}

TEST(BulkheadConcurrencyTest, ThreadsNeverExceedMaxConcurrentCallsAndTheCountsAddUp) {
  ManualClock clock;
  Bulkhead bulkhead({.name = "payments", .max_concurrent_calls = kSlots}, clock);
  Occupancy occupancy;
  std::atomic<std::uint64_t> full{0};
  run_threads([&] {
    for (int i = 0; i < kCallsPerThread; ++i) {
      try {
        bulkhead.call([&] { occupancy.enter_and_leave(); });
      } catch (const BulkheadFull&) {
        full.fetch_add(1);
      }
    }
  });
  EXPECT_LE(occupancy.peak.load(), kSlots);
  const BulkheadMetrics m = bulkhead.metrics();
  EXPECT_EQ(m.admitted, occupancy.ran.load());
  EXPECT_EQ(m.rejected, full.load());
  EXPECT_EQ(m.admitted + m.rejected, std::uint64_t{kThreads} * kCallsPerThread);
  EXPECT_LE(m.peak_in_flight, kSlots);
  EXPECT_GE(m.peak_in_flight, occupancy.peak.load()) << "a slot is held around the call";
  EXPECT_EQ(m.in_flight, 0);
}

TEST(BulkheadConcurrencyTest, WaitersAreAllAdmittedWhenTheirDeadlineNeverComes) {
  ManualClock clock;  // never moved: only releases can admit a waiter
  Bulkhead bulkhead({.name = "payments", .max_concurrent_calls = kSlots, .max_wait = hours(1)},
                    clock);
  Occupancy occupancy;
  run_threads([&] {
    for (int i = 0; i < kCallsPerThread / 4; ++i) {
      bulkhead.call([&] { occupancy.enter_and_leave(); });
    }
  });
  EXPECT_LE(occupancy.peak.load(), kSlots);
  const BulkheadMetrics m = bulkhead.metrics();
  EXPECT_EQ(m.admitted, std::uint64_t{kThreads} * (kCallsPerThread / 4));
  EXPECT_EQ(m.rejected, 0u);
  EXPECT_EQ(m.waiting, 0);
  EXPECT_EQ(m.in_flight, 0);
}

}  // namespace
}  // namespace keel::resilience
