// TwoTierCache: two "nodes" (each an L1 LruCache, an L2 RedisCache and a TwoTierCache, as two
// processes would have) sharing one real redis-server. Broadcasts travel through Redis, so the
// tests wait for them with wait_until (polling a condition), never a fixed sleep.
#include "keel/redis/two_tier_cache.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "keel/cache/cache_aside.h"
#include "keel/cache/lru_cache.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::redis {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RedisServer;
using testing::shared_redis_server;
using testing::wait_until;

constexpr auto kPropagation = seconds(10);  // generous: a broadcast takes well under 1 ms

RedisCacheOptions options_for(const RedisServer& server) {
  static std::atomic<int> next{0};
  RedisCacheOptions options;
  options.connection.host = server.host();
  options.connection.port = server.port();
  options.key_prefix = "keel:two-tier:t" + std::to_string(next.fetch_add(1)) + ":";
  return options;
}

// One node of a service: its own memory (L1), its own connections, the shared Redis.
struct Node {
  explicit Node(const RedisCacheOptions& options, TwoTierCacheOptions two_tier = {})
      : l1(1000), l2(options), cache(l1, l2, std::move(two_tier)) {}

  bool in_l1(const std::string& key) { return l1.get(key).has_value(); }

  cache::LruCache<std::string, std::string> l1;
  RedisCache<std::string, std::string> l2;
  TwoTierCache<std::string, std::string> cache;
};

// Sends raw commands to the server, as another client would.
void redis_command(const RedisServer& server, std::initializer_list<std::string> args) {
  redisContext* context = redisConnectWithTimeout(server.host().c_str(), server.port(), {5, 0});
  ASSERT_TRUE(context != nullptr && context->err == 0);
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.c_str());
    lengths.push_back(arg.size());
  }
  void* reply =
      redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data());
  EXPECT_NE(reply, nullptr) << context->errstr;
  freeReplyObject(reply);
  redisFree(context);
}

class TwoTierCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { options_ = options_for(shared_redis_server()); }

  static void expect_subscribed(Node& node) {
    ASSERT_TRUE(wait_until([&] { return node.cache.subscribed(); }, kPropagation))
        << "the node did not subscribe to " << node.cache.channel();
  }

  RedisCacheOptions options_;
};

TEST_F(TwoTierCacheTest, UpdateOnOneNodeIsSeenByTheOtherAfterItsInvalidationArrives) {
  // The source both nodes read through cache-aside.
  std::mutex mutex;
  std::map<std::string, std::string> users{{"user:1", "Ada"}};
  std::atomic<int> loads{0};
  auto loader = [&](const std::string& id) -> std::optional<std::string> {
    ++loads;
    std::lock_guard lock(mutex);
    return users.at(id);
  };
  Node a(options_);
  Node b(options_);
  expect_subscribed(a);
  expect_subscribed(b);
  cache::CacheAside<std::string, std::string> a_reads(a.cache, loader);
  cache::CacheAside<std::string, std::string> b_writes(b.cache, loader);

  EXPECT_EQ(a_reads.get("user:1"), "Ada");
  EXPECT_EQ(a_reads.get("user:1"), "Ada");
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(a.cache.metrics().l1_hits, 1u);

  {  // node B: update the source, then invalidate
    std::lock_guard lock(mutex);
    users["user:1"] = "Ada Lovelace";
  }
  b_writes.invalidate("user:1");

  // The subscriber counts an invalidation after it has erased the key from L1.
  ASSERT_TRUE(
      wait_until([&] { return a.cache.metrics().invalidations_received == 1; }, kPropagation))
      << "node A never got B's invalidation";
  EXPECT_FALSE(a.in_l1("user:1")) << "node A still holds the old value in L1";
  EXPECT_EQ(a_reads.get("user:1"), "Ada Lovelace");
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(b.cache.metrics().invalidations_sent, 1u);
}

TEST_F(TwoTierCacheTest, PutOnOneNodeReplacesTheValueInEveryL1) {
  Node a(options_);
  Node b(options_);
  expect_subscribed(a);
  expect_subscribed(b);
  a.cache.put("k", "v1");
  EXPECT_EQ(a.cache.get("k"), "v1");
  EXPECT_EQ(a.cache.metrics().l1_hits, 1u) << "put fills the writer's L1";

  b.cache.put("k", "v2");
  ASSERT_TRUE(wait_until([&] { return !a.in_l1("k"); }, kPropagation));
  EXPECT_EQ(a.cache.get("k"), "v2");
  EXPECT_EQ(a.cache.metrics().l2_hits, 1u);
  EXPECT_EQ(a.cache.get("k"), "v2");
  EXPECT_EQ(a.cache.metrics().l1_hits, 2u) << "an L2 hit fills L1";
}

TEST_F(TwoTierCacheTest, RegistersItsLookupsAndInvalidationsAsPrometheusCounters) {
  Node a(options_);
  expect_subscribed(a);
  MetricsRegistry registry;
  Subscription exported = a.cache.register_metrics(registry, "users");
  a.cache.put("k", "v");
  EXPECT_EQ(a.cache.get("k"), "v");
  EXPECT_EQ(a.cache.get("absent"), std::nullopt);
  const std::string text = registry.render();
  for (const char* line :
       {R"(keel_two_tier_cache_requests_total{cache="users",result="l1_hit"} 1)",
        R"(keel_two_tier_cache_requests_total{cache="users",result="miss"} 1)",
        R"(keel_two_tier_cache_invalidations_total{cache="users",direction="sent"} 1)"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST_F(TwoTierCacheTest, NodeIgnoresItsOwnBroadcasts) {
  Node a(options_);
  Node b(options_);
  expect_subscribed(a);
  expect_subscribed(b);
  a.l1.put("theirs", "v");
  a.cache.erase("mine");
  b.cache.erase("theirs");
  // A channel delivers in order: once B's broadcast has reached A, A's own came before it.
  ASSERT_TRUE(wait_until([&] { return !a.in_l1("theirs"); }, kPropagation));
  EXPECT_EQ(a.cache.metrics().invalidations_received, 1u) << "only B's broadcast counts";
  ASSERT_TRUE(
      wait_until([&] { return b.cache.metrics().invalidations_received == 1; }, kPropagation));
}

// An L1 that can hold a put() at its door, to open the window between a value read from L2 and
// its arrival in L1.
class GatedCache final : public cache::Cache<std::string, std::string> {
 public:
  std::optional<std::string> get(const std::string& key) override { return inner_.get(key); }
  void put(const std::string& key, std::string value, std::optional<Duration> ttl) override {
    if (armed_.exchange(false)) {
      std::unique_lock lock(mutex_);
      held_ = true;
      opened_.wait(lock, [&] { return open_; });
    }
    inner_.put(key, std::move(value), ttl);
  }
  bool erase(const std::string& key) override { return inner_.erase(key); }
  std::size_t size() const override { return inner_.size(); }
  std::size_t capacity() const override { return inner_.capacity(); }
  void clear() override { inner_.clear(); }
  cache::CacheStats stats() const override { return inner_.stats(); }

  void hold_next_put() { armed_ = true; }
  bool holding() {
    std::lock_guard lock(mutex_);
    return held_;
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }

 private:
  cache::LruCache<std::string, std::string> inner_{100};
  std::atomic<bool> armed_{false};
  std::mutex mutex_;
  std::condition_variable opened_;
  bool held_ = false;
  bool open_ = false;
};

TEST_F(TwoTierCacheTest, FillThatRacedWithAnInvalidationIsDropped) {
  GatedCache a_l1;
  RedisCache<std::string, std::string> a_l2(options_);
  TwoTierCache<std::string, std::string> a(a_l1, a_l2);
  Node b(options_);
  ASSERT_TRUE(wait_until([&] { return a.subscribed() && b.cache.subscribed(); }, kPropagation));
  b.cache.put("k", "old");
  // B's put broadcasts an invalidation too: let it reach A first, or it could land during A's
  // read below and (rightly) drop that fill before it reaches the door.
  ASSERT_TRUE(wait_until([&] { return a.metrics().invalidations_received == 1; }, kPropagation));

  // A reads "old" from L2; its L1 fill is held at the door...
  a_l1.hold_next_put();
  std::thread reader([&] { EXPECT_EQ(a.get("k"), "old"); });
  struct Join {  // on a failed ASSERT below too: open the door and join, never abort
    GatedCache& door;
    std::thread& thread;
    ~Join() {
      door.release();
      if (thread.joinable()) thread.join();
    }
  } join{a_l1, reader};
  ASSERT_TRUE(wait_until([&] { return a_l1.holding(); }, kPropagation));
  // ...while B writes "new" and its invalidation reaches A (finding nothing in L1 to erase).
  b.cache.put("k", "new");
  ASSERT_TRUE(wait_until([&] { return a.metrics().invalidations_received == 2; }, kPropagation));
  a_l1.release();
  reader.join();

  EXPECT_EQ(a_l1.get("k"), std::nullopt) << "the stale fill outlived the invalidation";
  EXPECT_EQ(a.get("k"), "new");
}

// A value codec that can hold the encoding of one value: TwoTierCache::put encodes after it has
// read the key's version and before it writes to Redis, so holding it opens the window in which
// another put of the same key on the same node can write first and finish.
struct GatedValueCodec {
  static std::string encode(const std::string& value) {
    std::unique_lock lock(mutex);
    if (value == held_value) {
      holding = true;
      changed.notify_all();
      changed.wait(lock, [] { return open; });
    }
    return value;
  }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }

  static void hold(std::string value) {
    std::lock_guard lock(mutex);
    held_value = std::move(value);
    holding = false;
    open = false;
  }
  static bool is_holding() {
    std::lock_guard lock(mutex);
    return holding;
  }
  static void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }

  static inline std::mutex mutex;
  static inline std::condition_variable changed;
  static inline std::string held_value;
  static inline bool holding = false;
  static inline bool open = true;
};

TEST_F(TwoTierCacheTest, PutWhoseFillIsDroppedStillEvictsTheValueItReplaced) {
  using Gated = TwoTierCache<std::string, std::string, DefaultCodec<std::string>, GatedValueCodec>;
  cache::LruCache<std::string, std::string> l1(100);
  RedisCache<std::string, std::string, DefaultCodec<std::string>, GatedValueCodec> l2(options_);
  Gated a(l1, l2);
  ASSERT_TRUE(wait_until([&] { return a.subscribed(); }, kPropagation));

  // The second writer reads the key's version, then is held before its write...
  GatedValueCodec::hold("second");
  std::thread second([&] { a.put("k", "second"); });
  struct Join {  // on a failed ASSERT below too: release and join, never abort
    std::thread& thread;
    ~Join() {
      GatedValueCodec::release();
      if (thread.joinable()) thread.join();
    }
  } join{second};
  ASSERT_TRUE(wait_until([] { return GatedValueCodec::is_holding(); }, kPropagation));
  // ...while the first writes, invalidates and fills L1 with its value.
  a.put("k", "first");
  ASSERT_EQ(l1.get("k"), "first");
  // The second's write lands last in Redis; the first's invalidation moved the version it read,
  // so its own fill is dropped, and the value it replaced must not stay behind in L1.
  GatedValueCodec::release();
  second.join();

  EXPECT_EQ(l2.get("k"), "second");
  const std::optional<std::string> in_l1 = l1.get("k");
  if (in_l1) {
    EXPECT_EQ(*in_l1, "second") << "L1 kept a value Redis no longer has";
  }
  EXPECT_EQ(a.get("k"), "second");
}

TEST_F(TwoTierCacheTest, ClearEmptiesEveryNodesL1AndRedis) {
  Node a(options_);
  Node b(options_);
  expect_subscribed(a);
  expect_subscribed(b);
  a.cache.put("x", "1");
  b.cache.put("y", "2");
  ASSERT_EQ(b.cache.get("x"), "1");  // now in B's L1 as well
  a.cache.clear();

  ASSERT_TRUE(wait_until([&] { return b.l1.size() == 0; }, kPropagation));
  EXPECT_EQ(a.l1.size(), 0u);
  EXPECT_EQ(a.l2.size(), 0u);
  EXPECT_EQ(b.cache.get("y"), std::nullopt);
}

TEST_F(TwoTierCacheTest, LostSubscriptionIsRestoredAndL1ClearedOfWhatItMayHaveMissed) {
  Node a(options_, {.resubscribe = {.initial = milliseconds(1)}});
  Node b(options_, {.resubscribe = {.initial = milliseconds(1)}});
  expect_subscribed(a);
  expect_subscribed(b);
  a.cache.put("k", "v1");
  ASSERT_TRUE(a.in_l1("k"));

  redis_command(shared_redis_server(), {"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(wait_until(
      [&] { return a.cache.metrics().subscriptions == 2 && a.cache.subscribed(); }, kPropagation));
  EXPECT_FALSE(a.in_l1("k")) << "invalidations sent while unsubscribed were lost: L1 is cleared";
  EXPECT_GE(a.cache.metrics().subscription_failures, 1u);

  ASSERT_TRUE(wait_until([&] { return b.cache.subscribed(); }, kPropagation));
  EXPECT_EQ(a.cache.get("k"), "v1");
  b.cache.erase("k");
  ASSERT_TRUE(wait_until([&] { return !a.in_l1("k"); }, kPropagation))
      << "invalidations flow again after resubscribing";
}

TEST_F(TwoTierCacheTest, MalformedBroadcastClearsL1) {
  Node a(options_);
  expect_subscribed(a);
  a.cache.put("k", "v");
  redis_command(shared_redis_server(), {"PUBLISH", a.cache.channel(), "short"});
  ASSERT_TRUE(
      wait_until([&] { return a.cache.metrics().malformed_invalidations == 1; }, kPropagation));
  EXPECT_EQ(a.l1.size(), 0u);
}

TEST_F(TwoTierCacheTest, RedisDownGetsFallThroughAndEraseStillErasesL1) {
  auto server = RedisServer::start();
  RedisCacheOptions options = options_for(*server);
  options.connection.connect_timeout = milliseconds(200);
  Node a(options, {.resubscribe = {.initial = milliseconds(1), .max_delay = milliseconds(20)}});
  expect_subscribed(a);
  a.cache.put("k", "v");
  a.cache.put("other", "v");
  ASSERT_TRUE(a.in_l1("k"));

  server.reset();  // Redis goes away
  ASSERT_TRUE(wait_until([&] { return !a.cache.subscribed(); }, kPropagation));

  EXPECT_EQ(a.cache.get("other"), std::nullopt)
      << "L1 cannot hear invalidations now: a miss, so that the caller reads the source";
  EXPECT_EQ(a.cache.metrics().l1_bypasses, 1u);
  EXPECT_TRUE(a.cache.erase("k")) << "L1 held it (Redis could not be asked)";
  EXPECT_FALSE(a.in_l1("k")) << "erase drops the key from L1 whatever Redis does";
  EXPECT_NO_THROW(a.cache.put("k", "v2"));
  EXPECT_FALSE(a.in_l1("k")) << "no L1 fill while unsubscribed";

  const RedisCacheMetrics l2 = a.l2.metrics();
  EXPECT_EQ(l2.read_errors, 1u);
  EXPECT_EQ(l2.write_errors, 2u);
  EXPECT_GE(a.cache.metrics().subscription_failures, 1u);
}

TEST_F(TwoTierCacheTest, UnansweredPingTakesTheSubscriptionDownUntilRedisAnswersAgain) {
  auto server = RedisServer::start();
  Node a(options_for(*server),
         {.health_check_interval = milliseconds(20), .resubscribe = {.initial = milliseconds(1)}});
  expect_subscribed(a);

  ASSERT_EQ(::kill(server->pid(), SIGSTOP), 0);  // alive, but silent
  const bool down = wait_until([&] { return !a.cache.subscribed(); }, kPropagation);
  ASSERT_EQ(::kill(server->pid(), SIGCONT), 0);
  ASSERT_TRUE(down) << "a silent server went unnoticed";
  EXPECT_TRUE(wait_until([&] { return a.cache.subscribed(); }, kPropagation));
}

TEST_F(TwoTierCacheTest, InvalidOptionsThrow) {
  cache::LruCache<std::string, std::string> l1(10);
  RedisCache<std::string, std::string> l2(options_);
  EXPECT_THROW(
      (TwoTierCache<std::string, std::string>(l1, l2, {.health_check_interval = Duration::zero()})),
      std::invalid_argument);
  EXPECT_THROW((TwoTierCache<std::string, std::string>(
                   l1, l2, {.resubscribe = {.initial = Duration::zero()}})),
               std::invalid_argument);
  TwoTierCache<std::string, std::string> cache(l1, l2);
  EXPECT_THROW(cache.put("k", "v", milliseconds(-1)), std::invalid_argument);
  EXPECT_EQ(cache.channel(), options_.key_prefix + "invalidations");
}

}  // namespace
}  // namespace keel::redis
