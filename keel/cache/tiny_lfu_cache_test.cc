// What W-TinyLFU does that LRU does not.
#include "keel/cache/tiny_lfu_cache.h"

#include <gtest/gtest.h>

#include "keel/cache/lru_cache.h"

namespace keel::cache {
namespace {

template <class C>
double hit_rate_of(C& cache, int requests, auto next_key) {
  for (int i = 0; i < requests; ++i) {
    const int key = next_key(i);
    if (!cache.get(key)) cache.put(key, key);
  }
  return cache.stats().hit_rate();
}

// 100 popular keys asked all the time, interleaved with a scan of keys asked once: LRU lets the
// scan flush the popular keys; the frequency filter does not admit one-hit wonders over them.
TEST(TinyLfuCacheTest, AScanDoesNotFlushPopularEntries) {
  const auto workload = [](int i) { return i % 2 == 0 ? (i / 2) % 100 : 1'000'000 + i; };
  LruCache<int, int> lru(150, {.shards = 1});
  TinyLfuCache<int, int> tinylfu(150, {.shards = 1});
  const double lru_rate = hit_rate_of(lru, 200'000, workload);
  const double tinylfu_rate = hit_rate_of(tinylfu, 200'000, workload);
  EXPECT_LT(lru_rate, 0.40);
  EXPECT_GT(tinylfu_rate, 0.48) << "nearly every popular request hits";
}

// A loop over 120 keys with capacity 100 defeats LRU entirely (every key is evicted just before
// it comes back); W-TinyLFU keeps most of the loop.
TEST(TinyLfuCacheTest, ALoopLargerThanTheCacheStillHits) {
  const auto workload = [](int i) { return i % 120; };
  LruCache<int, int> lru(100, {.shards = 1});
  TinyLfuCache<int, int> tinylfu(100, {.shards = 1});
  EXPECT_EQ(hit_rate_of(lru, 100'000, workload), 0.0);
  EXPECT_GT(hit_rate_of(tinylfu, 100'000, workload), 0.5);
}

// The same with a loop twenty times the cache: a key comes back every 1,000 requests, far beyond
// 10 x capacity, so only the sketch's floor on its history lets the filter tell loop members that
// have stayed from newcomers.
TEST(TinyLfuCacheTest, ALoopTwentyTimesTheCacheStillHits) {
  const auto workload = [](int i) { return i % 1000; };
  LruCache<int, int> lru(50, {.shards = 1});
  TinyLfuCache<int, int> tinylfu(50, {.shards = 1});
  EXPECT_EQ(hit_rate_of(lru, 200'000, workload), 0.0);
  EXPECT_GT(hit_rate_of(tinylfu, 200'000, workload), 0.02) << "the best possible is 0.049";
}

// Recency-heavy: the working set drifts, old keys never come back. The hill climber grows the
// window (LRU behaviour) from its initial 1 %.
TEST(TinyLfuCacheTest, TheWindowGrowsOnARecencyHeavyWorkload) {
  TinyLfuCache<int, int> cache(1000, {.shards = 1});
  const std::size_t initial = cache.window_capacity();
  EXPECT_EQ(initial, 10U);
  std::uint64_t state = 42;
  const auto drifting = [&](int i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return i / 4 + static_cast<int>((state >> 33) % 800);  // a window of 800 keys sliding forward
  };
  hit_rate_of(cache, 400'000, drifting);
  EXPECT_GT(cache.window_capacity(), initial * 5) << "window now " << cache.window_capacity();
}

TEST(TinyLfuCacheTest, CapacityOneStillWorks) {
  TinyLfuCache<int, int> cache(1, {.shards = 1});
  cache.put(1, 1);
  EXPECT_EQ(cache.get(1), 1);
  cache.put(2, 2);
  EXPECT_EQ(cache.size(), 1U);
}

}  // namespace
}  // namespace keel::cache
