// LruCache and TinyLfuCache share the Cache contract: typed tests pin it for both; then LRU's
// exact order.
#include "keel/cache/lru_cache.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "keel/cache/tiny_lfu_cache.h"

namespace keel::cache {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

template <class C>
class CacheContractTest : public ::testing::Test {
 protected:
  C make(std::size_t capacity, CacheOptions options = {}) {
    return C(capacity, std::move(options), clock_);
  }
  ManualClock clock_;
};

using Caches = ::testing::Types<LruCache<std::string, int>, TinyLfuCache<std::string, int>>;
TYPED_TEST_SUITE(CacheContractTest, Caches);

TYPED_TEST(CacheContractTest, GetReturnsWhatWasPut) {
  auto cache = this->make(10);
  EXPECT_EQ(cache.get("a"), std::nullopt);
  cache.put("a", 1);
  EXPECT_EQ(cache.get("a"), 1);
  cache.put("a", 2);
  EXPECT_EQ(cache.get("a"), 2) << "a put replaces";
  EXPECT_EQ(cache.size(), 1U);
  EXPECT_EQ(cache.capacity(), 10U);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 2U);
  EXPECT_EQ(s.misses, 1U);
  EXPECT_EQ(s.puts, 2U);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 2.0 / 3.0);
}

TYPED_TEST(CacheContractTest, AnEntryIsAMissFromItsTtlOn) {
  auto cache = this->make(10);
  cache.put("session", 7, seconds(10));
  this->clock_.advance(seconds(10) - Duration(1));
  EXPECT_EQ(cache.get("session"), 7);
  this->clock_.advance(Duration(1));
  EXPECT_EQ(cache.get("session"), std::nullopt);
  EXPECT_EQ(cache.get("session"), std::nullopt) << "never returned after its ttl";
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.expirations, 1U);
  EXPECT_EQ(s.misses, 2U);
  EXPECT_EQ(cache.size(), 0U);
}

TYPED_TEST(CacheContractTest, DefaultTtlAppliesToPutsWithoutOne) {
  auto cache = this->make(10, {.default_ttl = seconds(5)});
  cache.put("a", 1);
  cache.put("b", 2, seconds(60));
  this->clock_.advance(seconds(5));
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.get("b"), 2);
}

TYPED_TEST(CacheContractTest, ExpiredEntriesAreReclaimedBeforeLiveOnesAreEvicted) {
  auto cache = this->make(3, {.shards = 1});
  cache.put("short-lived", 1, seconds(1));
  cache.put("live-1", 2);
  cache.put("live-2", 3);
  this->clock_.advance(seconds(2));
  cache.put("new", 4);
  EXPECT_EQ(cache.get("live-1"), 2);
  EXPECT_EQ(cache.get("live-2"), 3);
  EXPECT_EQ(cache.get("new"), 4);
  EXPECT_EQ(cache.stats().evictions, 0U);
  EXPECT_EQ(cache.stats().expirations, 1U);
}

TYPED_TEST(CacheContractTest, NeverHoldsMoreThanItsCapacity) {
  auto cache = this->make(100);
  for (int i = 0; i < 10'000; ++i) {
    cache.put(std::to_string(i % 700), i);
    cache.get(std::to_string((i * 7) % 700));
    ASSERT_LE(cache.size(), 100U);
  }
  EXPECT_GT(cache.stats().evictions, 0U);
}

TYPED_TEST(CacheContractTest, EraseAndClear) {
  auto cache = this->make(10);
  cache.put("a", 1, seconds(3));
  cache.put("b", 2);
  EXPECT_TRUE(cache.erase("a"));
  EXPECT_FALSE(cache.erase("a"));
  EXPECT_EQ(cache.get("a"), std::nullopt);
  cache.clear();
  EXPECT_EQ(cache.size(), 0U);
  EXPECT_EQ(cache.get("b"), std::nullopt);
  cache.put("c", 3);
  EXPECT_EQ(cache.get("c"), 3) << "usable after clear";
}

TYPED_TEST(CacheContractTest, InvalidArgumentsAreRefused) {
  EXPECT_THROW(this->make(0), std::invalid_argument);
  EXPECT_THROW(this->make(10, {.default_ttl = Duration::zero()}), std::invalid_argument);
  auto cache = this->make(10);
  EXPECT_THROW(cache.put("a", 1, -seconds(1)), std::invalid_argument);
  EXPECT_THROW(cache.put("a", 1, Duration::zero()), std::invalid_argument);
  EXPECT_EQ(cache.size(), 0U) << "a refused put stores nothing";
}

TYPED_TEST(CacheContractTest, IsUsableThroughTheInterface) {
  auto concrete = this->make(10);
  Cache<std::string, int>& cache = concrete;
  cache.put("a", 1);
  EXPECT_EQ(cache.get("a"), 1);
}

TYPED_TEST(CacheContractTest, RegistersItsStatsAsPrometheusCounters) {
  auto cache = this->make(10);
  MetricsRegistry registry;
  Subscription exported = register_metrics(registry, "users", cache);
  cache.put("a", 1);
  cache.get("a");
  cache.get("b");
  const std::string text = registry.render();
  for (const char* line : {R"(keel_cache_requests_total{cache="users",result="hit"} 1)",
                           R"(keel_cache_requests_total{cache="users",result="miss"} 1)",
                           R"(keel_cache_puts_total{cache="users"} 1)"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  exported.unsubscribe();
  EXPECT_EQ(registry.render().find("keel_cache_puts_total{"), std::string::npos);
}

TEST(LruCacheTest, ExactLruWithOneShard) {
  ManualClock clock;
  LruCache<std::string, int> cache(3, {.shards = 1}, clock);
  cache.put("a", 1);
  cache.put("b", 2);
  cache.put("c", 3);
  EXPECT_EQ(cache.get("a"), 1);  // a is now the most recent: b is the least
  cache.put("d", 4);
  EXPECT_EQ(cache.get("b"), std::nullopt);
  cache.put("c", 33);  // a put also makes an entry most recent: a is now the least
  cache.put("e", 5);
  EXPECT_EQ(cache.get("a"), std::nullopt);
  EXPECT_EQ(cache.get("c"), 33);
  EXPECT_EQ(cache.get("d"), 4);
  EXPECT_EQ(cache.get("e"), 5);
  EXPECT_EQ(cache.stats().evictions, 2U);
}

TEST(LruCacheTest, SmallCachesHaveOneShardLargeOnesSeveral) {
  EXPECT_EQ((LruCache<int, int>(100).shards()), 1U);
  EXPECT_GE((LruCache<int, int>(1'000'000).shards()), 2U);
  EXPECT_EQ((LruCache<int, int>(1000, {.shards = 3}).shards()), 4U) << "a power of two";
  EXPECT_EQ((LruCache<int, int>(2, {.shards = 64}).shards()), 2U) << "never more than capacity";
}

}  // namespace
}  // namespace keel::cache
