// TwoTierCache under concurrency: two nodes whose threads read, write and invalidate a few keys
// at once end coherent, every value left in an L1 being the one Redis holds, once all the
// broadcasts have arrived. (two_tier_cache_test.cc pins the fill/invalidation race itself
// deterministically.) Runs under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/cache/lru_cache.h"
#include "keel/redis/redis_cache.h"
#include "keel/redis/two_tier_cache.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::redis {
namespace {

constexpr int kKeys = 4;  // few keys: operations on one key overlap all the time
constexpr int kThreadsPerNode = 3;
constexpr int kOperationsPerThread = 600;
constexpr auto kPropagation = std::chrono::seconds(30);

struct Node {
  explicit Node(const RedisCacheOptions& options) : l1(100), l2(options), cache(l1, l2) {}
  cache::LruCache<std::string, std::string> l1;
  RedisCache<std::string, std::string> l2;
  TwoTierCache<std::string, std::string> cache;
};

std::string key_name(int k) { return "key-" + std::to_string(k); }

// Random gets (half), puts and erases on the node's cache.
void hammer(Node& node, const std::string& writer, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> key(0, kKeys - 1);
  std::uniform_int_distribution<int> operation(0, 3);
  for (int i = 0; i < kOperationsPerThread; ++i) {
    const std::string k = key_name(key(random));
    switch (operation(random)) {
      case 0:
        node.cache.put(k, writer + "-" + std::to_string(i));
        break;
      case 1:
        node.cache.erase(k);
        break;
      default:
        node.cache.get(k);
    }
  }
}

TEST(TwoTierCacheConcurrencyTest, NodesEndCoherentAfterConcurrentReadsWritesAndInvalidations) {
  std::unique_ptr<testing::RedisServer> server;
  ASSERT_NO_THROW(server = testing::RedisServer::start());
  RedisCacheOptions options;
  options.connection.host = server->host();
  options.connection.port = server->port();
  options.connection.pool_size = kThreadsPerNode;
  options.key_prefix = "keel:two-tier:concurrency:";
  Node a(options);
  Node b(options);
  ASSERT_TRUE(testing::wait_until([&] { return a.cache.subscribed() && b.cache.subscribed(); },
                                  kPropagation));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadsPerNode; ++t) {
    threads.emplace_back(hammer, std::ref(a), "a" + std::to_string(t), 2 * t);
    threads.emplace_back(hammer, std::ref(b), "b" + std::to_string(t), 2 * t + 1);
  }
  for (std::thread& thread : threads) thread.join();

  // Every broadcast one node sent has been applied by the other.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return a.cache.metrics().invalidations_received == b.cache.metrics().invalidations_sent &&
               b.cache.metrics().invalidations_received == a.cache.metrics().invalidations_sent;
      },
      kPropagation));
  ASSERT_EQ(a.cache.metrics().subscriptions, 1u) << "the subscription was never lost";
  ASSERT_EQ(b.cache.metrics().subscriptions, 1u);
  EXPECT_EQ(a.l2.metrics().errors() + b.l2.metrics().errors(), 0u);

  for (int k = 0; k < kKeys; ++k) {
    const std::string name = key_name(k);
    const std::optional<std::string> in_redis = a.l2.get(name);
    for (Node* node : {&a, &b}) {
      const std::optional<std::string> in_l1 = node->l1.get(name);
      if (in_l1) {
        EXPECT_EQ(in_l1, in_redis) << name << ": an L1 kept a value Redis no longer has";
      }
    }
  }
}

}  // namespace
}  // namespace keel::redis
