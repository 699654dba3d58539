#include "keel/ratelimit/store.h"

#include <gtest/gtest.h>

#include <memory>

#include "keel/ratelimit/store_conformance.h"

namespace keel::ratelimit {
namespace {

using std::chrono::seconds;
using testing::StoreCase;
using testing::StoreConformanceTest;

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
                         ::testing::Values(StoreCase{"memory",
                                                     [](ManualClock& clock) {
                                                       return std::make_unique<MemoryStore>(
                                                           KeyedOptions{}, clock);
                                                     }}),
                         testing::store_case_name);

TEST(MemoryStoreTest, ChangedParametersStartAfresh) {
  ManualClock clock;
  MemoryStore store({}, clock);
  EXPECT_TRUE(store.try_acquire("k", Limit::fixed_window(1, seconds(1))).allowed);
  EXPECT_FALSE(store.try_acquire("k", Limit::fixed_window(1, seconds(1))).allowed);
  EXPECT_TRUE(store.try_acquire("k", Limit::fixed_window(2, seconds(1))).allowed);
  EXPECT_EQ(store.size(), 2U);
}

TEST(MemoryStoreTest, RejectsInvalidOptions) {
  EXPECT_THROW(MemoryStore(KeyedOptions{.max_keys = 0}), std::invalid_argument);
}

TEST(StoreRateLimiterTest, OneKeyOfAStoreIsARateLimiter) {
  ManualClock clock;
  MemoryStore store({}, clock);
  StoreRateLimiter limiter(store, "api-key-1", Limit::token_bucket(1, 2));
  EXPECT_TRUE(limiter.allow());
  EXPECT_TRUE(limiter.allow());
  EXPECT_FALSE(limiter.allow());
  EXPECT_EQ(limiter.metrics().allowed, 2U);
  EXPECT_EQ(limiter.metrics().denied, 1U);
  EXPECT_FALSE(store.try_acquire("api-key-1", Limit::token_bucket(1, 2)).allowed)
      << "the limiter and the store share the key's state";
  EXPECT_THROW(StoreRateLimiter(store, "", Limit::token_bucket(1, 2)), std::invalid_argument);
}

}  // namespace
}  // namespace keel::ratelimit
