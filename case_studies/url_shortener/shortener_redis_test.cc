// The shortener's Redis parts against a private redis-server (tests/support): counter blocks
// from Redis (RedisCounterSource) that survive Redis losing its data, and the link cache shared
// by several Shorteners (RedisLinkCache): hot links shared, deletes seen by the other nodes, and
// the cache-aside race across nodes closed. The durable store is an SQLite file (the PostgreSQL
// deployment: tests/integration/shortener_two_nodes_test.cc).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "case_studies/url_shortener/link_store.h"
#include "case_studies/url_shortener/redis_counter_source.h"
#include "case_studies/url_shortener/redis_link_cache.h"
#include "case_studies/url_shortener/shortener.h"
#include "tests/support/free_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;
using testing::shared_redis_server;
using testing::wait_until;

redis::ConnectionOptions redis_connection() {
  const testing::RedisServer& server = shared_redis_server();
  return {.host = server.host(), .port = server.port()};
}

// Each test its own keys.
std::string unique_name(std::string_view stem) {
  static std::atomic<int> next{0};
  return fmt::format("{}:{}", stem, next.fetch_add(1));
}

void redis_command(const std::vector<std::string>& args) {
  const testing::RedisServer& server = shared_redis_server();
  redisContext* context = redisConnectWithTimeout(server.host().c_str(), server.port(), {5, 0});
  ASSERT_TRUE(context != nullptr && context->err == 0);
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data()));
  ASSERT_NE(reply, nullptr);
  EXPECT_NE(reply->type, REDIS_REPLY_ERROR) << reply->str;
  freeReplyObject(reply);
  redisFree(context);
}

class ShortenerRedisTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "links.db").string(); }
  RedisCounterOptions counter_options(std::uint64_t epoch = 1'000) {
    return {.connection = redis_connection(), .key = counter_key_, .epoch = epoch};
  }
  RedisLinkCacheOptions cache_options(std::size_t local_capacity = 1'000) {
    return {.connection = redis_connection(),
            .key_prefix = cache_prefix_,
            .local_capacity = local_capacity};
  }

  testing::TempDir dir_{"keel-shortener-redis"};
  SqliteLinkStore store_{path()};
  const std::string counter_key_ = unique_name("keel:test:counter");
  const std::string cache_prefix_ = unique_name("keel:test:links") + ":";
};

// Counter blocks

TEST_F(ShortenerRedisTest, BlocksComeFromRedisInOrderWithinAnEpochTakenFromTheStore) {
  RedisCounterSource counters(counter_options(100), store_);
  const std::uint64_t first = counters.reserve_counter(10);
  EXPECT_EQ(counters.reserve_counter(10), first + 10);
  EXPECT_EQ(counters.reserve_counter(30), first + 20);
  EXPECT_EQ(counters.metrics().epochs, 1u);
  EXPECT_EQ(counters.metrics().blocks, 3u);
  // The store's own counter is past the epoch: a server without Redis cannot collide with it.
  EXPECT_GE(store_.reserve_counter(1), first + 100);
}

TEST_F(ShortenerRedisTest, AnEpochUsedUpIsReplacedFromTheStoreWithoutReuse) {
  RedisCounterSource counters(counter_options(25), store_);
  std::set<std::uint64_t> values;
  for (int i = 0; i < 20; ++i) {
    const std::uint64_t first = counters.reserve_counter(10);
    for (std::uint64_t v = first; v < first + 10; ++v) {
      ASSERT_TRUE(values.insert(v).second) << "value " << v << " handed out twice";
    }
  }
  EXPECT_GE(counters.metrics().epochs, 10u);  // 25 per epoch holds two blocks of 10
}

TEST_F(ShortenerRedisTest, RedisLosingItsDataNeverHandsAValueOutTwice) {
  RedisCounterSource counters(counter_options(1'000), store_);
  std::set<std::uint64_t> values;
  const auto take = [&] {
    const std::uint64_t first = counters.reserve_counter(100);
    for (std::uint64_t v = first; v < first + 100; ++v) {
      ASSERT_TRUE(values.insert(v).second) << "value " << v << " handed out twice";
    }
  };
  take();
  take();
  redis_command({"DEL", counter_key_});  // as a restart without persistence would
  take();
  take();
  redis_command({"FLUSHDB"});
  take();
  EXPECT_EQ(counters.metrics().epochs, 3u);
}

TEST_F(ShortenerRedisTest, TwoServersTakingBlocksAtOnceNeverOverlap) {
  RedisCounterSource a(counter_options(500), store_);
  SqliteLinkStore other_store(path());
  RedisCounterSource b(counter_options(500), other_store);
  std::vector<std::uint64_t> firsts_a, firsts_b;
  std::thread ta([&] {
    for (int i = 0; i < 300; ++i) firsts_a.push_back(a.reserve_counter(7));
  });
  std::thread tb([&] {
    for (int i = 0; i < 300; ++i) firsts_b.push_back(b.reserve_counter(7));
  });
  ta.join();
  tb.join();
  std::vector<std::uint64_t> all = firsts_a;
  all.insert(all.end(), firsts_b.begin(), firsts_b.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 1; i < all.size(); ++i) {
    ASSERT_GE(all[i], all[i - 1] + 7) << "blocks overlap at " << all[i - 1];
  }
}

TEST_F(ShortenerRedisTest, WithoutRedisBlocksComeFromTheStoreAndAreCounted) {
  RedisCounterSource counters({.connection = {.host = "127.0.0.1",
                                              .port = testing::free_loopback_port(),
                                              .connect_timeout = 200ms},
                               .key = counter_key_},
                              store_);
  const std::uint64_t first = counters.reserve_counter(10);
  EXPECT_EQ(counters.reserve_counter(10), first + 10);
  EXPECT_EQ(counters.metrics().fallbacks, 2u);
  EXPECT_EQ(counters.metrics().blocks, 0u);
}

TEST_F(ShortenerRedisTest, InvalidCounterOptionsAndBlocksAreRefused) {
  EXPECT_THROW(RedisCounterSource({.key = ""}, store_), std::invalid_argument);
  EXPECT_THROW(RedisCounterSource({.epoch = 0}, store_), std::invalid_argument);
  RedisCounterSource counters(counter_options(100), store_);
  EXPECT_THROW(counters.reserve_counter(0), std::invalid_argument);
  EXPECT_THROW(counters.reserve_counter(101), std::invalid_argument);
}

// The shared link cache

TEST(LinkCodecTest, RoundTripsEveryFieldAndRefusesGarbage) {
  const Link link{.code = "promo\"'\\",
                  .url = "https://example.com/ü?q=\"x\"",
                  .created_at = WallTime{std::chrono::milliseconds(1'700'000'000'123)},
                  .expires_at = WallTime{std::chrono::milliseconds(1'800'000'000'000)},
                  .custom_alias = true,
                  .deleted = true};
  const Link back = LinkCodec::decode(LinkCodec::encode(link));
  EXPECT_EQ(back.code, link.code);
  EXPECT_EQ(back.url, link.url);
  EXPECT_EQ(back.created_at, link.created_at);
  EXPECT_EQ(back.expires_at, link.expires_at);
  EXPECT_TRUE(back.custom_alias);
  EXPECT_TRUE(back.deleted);
  EXPECT_FALSE(LinkCodec::decode(LinkCodec::encode({.code = "c", .url = "u"})).expires_at);
  EXPECT_ANY_THROW(LinkCodec::decode("not json"));
  EXPECT_ANY_THROW(LinkCodec::decode(R"({"code": 1})"));
}

class SharedCacheTest : public ShortenerRedisTest {
 protected:
  ShortenerOptions options(cache::Cache<std::string, Link>& cache) {
    return {.base_url = "https://sho.rt", .code_key = "shared", .cache = &cache};
  }
};

TEST_F(SharedCacheTest, ALinkLoadedByOneNodeIsAHitOnTheOther) {
  RedisLinkCache cache_a(cache_options(0)), cache_b(cache_options(0));
  SqliteLinkStore store_b(path());
  Shortener a(store_, options(cache_a));
  Shortener b(store_b, options(cache_b));
  const std::string code = a.create({.url = "https://example.com/hot"}).link.code;
  EXPECT_EQ(a.resolve(code).url, "https://example.com/hot");  // loaded, now in Redis
  EXPECT_EQ(a.cache_stats().loads, 1u);
  EXPECT_EQ(b.resolve(code).url, "https://example.com/hot");
  EXPECT_EQ(b.cache_stats().loads, 0u) << "node B should have found the link in Redis";
  EXPECT_EQ(cache_b.metrics().redis_hits, 1u);
}

TEST_F(SharedCacheTest, ADeleteOnOneNodeIsSeenByTheOtherThroughItsL1) {
  RedisLinkCache cache_a(cache_options()), cache_b(cache_options());
  ASSERT_TRUE(wait_until([&] { return cache_a.l1_active() && cache_b.l1_active(); }, 10s))
      << "the invalidation subscriptions did not start";
  SqliteLinkStore store_b(path());
  Shortener a(store_, options(cache_a));
  Shortener b(store_b, options(cache_b));
  const std::string code = a.create({.url = "https://example.com/doomed"}).link.code;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(b.resolve(code).state, Resolution::State::found);
  EXPECT_GE(cache_b.metrics().l1_hits, 1u) << "node B should serve the link from its L1";

  ASSERT_TRUE(a.remove(code));
  EXPECT_EQ(a.resolve(code).state, Resolution::State::gone);
  // One hop through Redis: B's L1 drops the link when A's invalidation arrives.
  EXPECT_TRUE(wait_until([&] { return b.resolve(code).state == Resolution::State::gone; }, 5s))
      << "node B still redirects a link deleted on node A";
  EXPECT_GE(cache_b.metrics().invalidations_received, 1u);
}

// A store through which node B reads a link, and node A deletes it right after the read: the
// interleaving where B's fill of the live link reaches Redis after A's invalidation.
class DeleteAfterRead final : public LinkStore {
 public:
  DeleteAfterRead(LinkStore& inner, std::function<void(const std::string&)> on_first_read)
      : inner_(inner), on_first_read_(std::move(on_first_read)) {}
  bool insert(const Link& link, std::optional<Link>* existing) override {
    return inner_.insert(link, existing);
  }
  std::optional<Link> find(std::string_view code) override {
    std::optional<Link> link = inner_.find(code);
    if (link && !fired_.exchange(true)) on_first_read_(link->code);
    return link;
  }
  std::optional<Link> find_plain(std::string_view url) override { return inner_.find_plain(url); }
  bool remove(std::string_view code, WallTime at) override { return inner_.remove(code, at); }
  std::uint64_t reserve_counter(std::uint64_t count) override {
    return inner_.reserve_counter(count);
  }

 private:
  LinkStore& inner_;
  std::function<void(const std::string&)> on_first_read_;
  std::atomic<bool> fired_{false};
};

TEST_F(SharedCacheTest, AFillRacingADeleteOnAnotherNodeDoesNotResurrectTheLink) {
  RedisLinkCache cache_a(cache_options(0)), cache_b(cache_options(0));
  SqliteLinkStore store_b(path());
  Shortener a(store_, options(cache_a));
  const std::string code = a.create({.url = "https://example.com/raced"}).link.code;
  DeleteAfterRead racing(store_b, [&](const std::string& read) { ASSERT_TRUE(a.remove(read)); });
  Shortener b(racing, options(cache_b));

  // B read the link before A's delete committed: this one answer may still be the link.
  EXPECT_EQ(b.resolve(code).state, Resolution::State::found);
  // But what B wrote to Redis after A's invalidation must not outlive the delete.
  EXPECT_EQ(a.resolve(code).state, Resolution::State::gone);
  EXPECT_EQ(b.resolve(code).state, Resolution::State::gone);
  RedisLinkCache fresh(cache_options(0));
  const std::optional<Link> cached = fresh.get(code);
  EXPECT_TRUE(!cached || cached->deleted) << "Redis holds the deleted link as live";
}

TEST_F(SharedCacheTest, WithRedisDownTheStoreAnswersAndFailuresAreCounted) {
  RedisLinkCache down({.connection = {.host = "127.0.0.1",
                                      .port = testing::free_loopback_port(),
                                      .connect_timeout = 200ms},
                       .local_capacity = 0});
  Shortener a(store_, options(down));
  const std::string code = a.create({.url = "https://example.com/no-redis"}).link.code;
  EXPECT_EQ(a.resolve(code).url, "https://example.com/no-redis");
  ASSERT_TRUE(a.remove(code));
  EXPECT_EQ(a.resolve(code).state, Resolution::State::gone);
  EXPECT_GT(down.metrics().redis_errors, 0u);
}

}  // namespace
}  // namespace keel::shortener
