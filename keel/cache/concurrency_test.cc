// Caches and cache-aside from many threads. Runs under TSan.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/cache.h"

namespace keel::cache {
namespace {

constexpr int kThreads = 4;

template <class F>
void run_threads(int n, F body) {
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t) pool.emplace_back(body, t);
  for (auto& thread : pool) thread.join();
}

template <class C>
class CacheConcurrencyTest : public ::testing::Test {};
using Caches = ::testing::Types<LruCache<int, int>, TinyLfuCache<int, int>>;
TYPED_TEST_SUITE(CacheConcurrencyTest, Caches);

TYPED_TEST(CacheConcurrencyTest, StatsAreExactAndCapacityHolds) {
  ManualClock clock;
  TypeParam cache(1000, {.shards = 8}, clock);
  std::atomic<std::uint64_t> hits{0}, misses{0}, puts{0};
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < 20'000; ++i) {
      const int key = (i * 31 + t * 7) % 3000;
      if (cache.get(key)) {
        ++hits;
      } else {
        ++misses;
        cache.put(key, i,
                  i % 3 == 0 ? std::optional<Duration>(std::chrono::seconds(1)) : std::nullopt);
        ++puts;
      }
      if (t == 0 && i % 1000 == 0) clock.advance(std::chrono::milliseconds(300));
      if (t == 1 && i % 5000 == 0) cache.erase(key);
    }
  });
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, hits.load());
  EXPECT_EQ(s.misses, misses.load());
  EXPECT_EQ(s.puts, puts.load());
  EXPECT_LE(cache.size(), 1000U);
}

TEST(CacheAsideConcurrencyTest, ConcurrentMissesLoadOnceAndShareTheResult) {
  LruCache<std::string, std::string> cache(100);
  std::atomic<int> loads{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  CacheAside<std::string, std::string> aside(cache, [&](const std::string& key) {
    ++loads;
    released.wait();  // hold the load until every other caller is waiting for it
    return std::optional<std::string>(fmt::format("value of {}", key));
  });
  std::vector<std::string> results(kThreads);
  std::thread releaser([&] {
    while (aside.stats().shared_loads < kThreads - 1) std::this_thread::yield();
    release.set_value();
  });
  run_threads(kThreads, [&](int t) { results[static_cast<std::size_t>(t)] = *aside.get("k"); });
  releaser.join();
  EXPECT_EQ(loads.load(), 1);
  for (const auto& r : results) EXPECT_EQ(r, "value of k");
}

TEST(CacheAsideConcurrencyTest, AFailedLoadFailsEveryWaiterAndIsNotCached) {
  LruCache<int, int> cache(100);
  std::atomic<int> loads{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  CacheAside<int, int> aside(cache, [&](const int&) -> std::optional<int> {
    if (++loads == 1) {
      released.wait();
      throw std::runtime_error("timeout");
    }
    return 7;
  });
  std::thread releaser([&] {
    while (aside.stats().shared_loads < kThreads - 1) std::this_thread::yield();
    release.set_value();
  });
  std::atomic<int> failed{0};
  run_threads(kThreads, [&](int) {
    try {
      aside.get(1);
    } catch (const std::runtime_error&) {
      ++failed;
    }
  });
  releaser.join();
  EXPECT_EQ(failed.load(), kThreads);
  EXPECT_EQ(aside.get(1), 7) << "the error was not cached";
  EXPECT_EQ(loads.load(), 2);
}

}  // namespace
}  // namespace keel::cache
