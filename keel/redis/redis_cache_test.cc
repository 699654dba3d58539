// RedisCache against a real redis-server (tests/support), and its codecs.
#include "keel/redis/redis_cache.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/errors.h"
#include "tests/support/free_port.h"
#include "tests/support/redis_server.h"
#include "tests/support/wait.h"

namespace keel::redis {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using testing::RedisServer;
using testing::shared_redis_server;

// Each cache gets its own prefix so that no test sees another's keys.
std::string unique_prefix(std::string_view stem = "keel:cache:t") {
  static std::atomic<int> next{0};
  return std::string(stem) + std::to_string(next.fetch_add(1)) + ":";
}

RedisCacheOptions options_for(const RedisServer& server) {
  RedisCacheOptions options;
  options.connection.host = server.host();
  options.connection.port = server.port();
  options.key_prefix = unique_prefix();
  return options;
}

// A plain hiredis connection, to look at what the cache stored.
class RedisClient {
 public:
  explicit RedisClient(const RedisServer& server)
      : context_(redisConnectWithTimeout(server.host().c_str(), server.port(), {5, 0})) {
    if (context_ == nullptr || context_->err != 0) throw std::runtime_error("cannot connect");
  }
  ~RedisClient() { redisFree(context_); }
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // The reply as text: a string or status as is, an integer in decimal, nil as "(nil)".
  std::string command(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.c_str());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    if (reply == nullptr) throw std::runtime_error(context_->errstr);
    std::string text;
    if (reply->type == REDIS_REPLY_INTEGER) {
      text = std::to_string(reply->integer);
    } else if (reply->type == REDIS_REPLY_NIL) {
      text = "(nil)";
    } else {
      text.assign(reply->str == nullptr ? "" : reply->str, reply->len);
    }
    freeReplyObject(reply);
    return text;
  }

 private:
  redisContext* context_;
};

// A user-supplied codec, for a type keel knows nothing of.
struct Point {
  int x = 0;
  int y = 0;
  bool operator==(const Point&) const = default;
};
struct PointCodec {
  static std::string encode(const Point& p) {
    return std::to_string(p.x) + "," + std::to_string(p.y);
  }
  static Point decode(std::string_view bytes) {
    const std::size_t comma = bytes.find(',');
    if (comma == std::string_view::npos) throw std::invalid_argument("no comma");
    return {DefaultCodec<int>::decode(bytes.substr(0, comma)),
            DefaultCodec<int>::decode(bytes.substr(comma + 1))};
  }
};
static_assert(Codec<PointCodec, Point>);
static_assert(!Codec<PointCodec, int>);

class RedisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { options_ = options_for(shared_redis_server()); }

  RedisCacheOptions options_;
};

TEST(RedisCodecTest, DefaultCodecsRoundTripTheirWholeRange) {
  using I64 = DefaultCodec<std::int64_t>;
  EXPECT_EQ(I64::encode(-42), "-42");
  EXPECT_EQ(I64::decode(I64::encode(std::numeric_limits<std::int64_t>::min())),
            std::numeric_limits<std::int64_t>::min());
  using U64 = DefaultCodec<std::uint64_t>;
  EXPECT_EQ(U64::decode(U64::encode(std::numeric_limits<std::uint64_t>::max())),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(DefaultCodec<double>::decode(DefaultCodec<double>::encode(0.1)), 0.1);
  EXPECT_EQ(DefaultCodec<bool>::encode(true), "1");
  EXPECT_FALSE(DefaultCodec<bool>::decode("0"));
  const std::string binary("a\0b", 3);
  EXPECT_EQ(DefaultCodec<std::string>::decode(DefaultCodec<std::string>::encode(binary)), binary);
}

TEST(RedisCodecTest, MalformedInputThrows) {
  EXPECT_THROW(DefaultCodec<int>::decode("12x"), std::invalid_argument);
  EXPECT_THROW(DefaultCodec<int>::decode(""), std::invalid_argument);
  EXPECT_THROW(DefaultCodec<std::uint8_t>::decode("256"), std::invalid_argument) << "out of range";
  EXPECT_THROW(DefaultCodec<bool>::decode("yes"), std::invalid_argument);
}

TEST_F(RedisCacheTest, PutValueIsStoredEncodedUnderThePrefixedKey) {
  RedisCache<std::int64_t, Point, DefaultCodec<std::int64_t>, PointCodec> cache(options_);
  cache.put(42, Point{3, -4});

  EXPECT_EQ(cache.redis_key(42), options_.key_prefix + "42");
  RedisClient client(shared_redis_server());
  EXPECT_EQ(client.command({"GET", options_.key_prefix + "42"}), "3,-4");
  EXPECT_EQ(cache.get(42), (Point{3, -4}));
}

TEST_F(RedisCacheTest, StatsCountHitsMissesAndPuts) {
  RedisCache<std::string, std::string> cache(options_);
  EXPECT_EQ(cache.get("absent"), std::nullopt);
  cache.put("k", "v");
  EXPECT_EQ(cache.get("k"), "v");
  EXPECT_EQ(cache.get("k"), "v");

  const cache::CacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.puts, 1u);
  EXPECT_EQ(cache.metrics().errors(), 0u);
}

TEST_F(RedisCacheTest, TtlIsSetInMillisecondsAndDefaultsToTheOptions) {
  options_.default_ttl = minutes(5);
  RedisCache<std::string, std::string> cache(options_);
  cache.put("default", "v");
  cache.put("explicit", "v", minutes(1));
  cache.put("fraction", "v", std::chrono::microseconds(59'999'001));

  RedisClient client(shared_redis_server());
  const auto pttl = [&](const std::string& key) {
    return std::stoll(client.command({"PTTL", cache.redis_key(key)}));
  };
  EXPECT_GT(pttl("default"), 299'000);
  EXPECT_LE(pttl("default"), 300'000);
  EXPECT_GT(pttl("explicit"), 59'000);
  EXPECT_LE(pttl("explicit"), 60'000);
  EXPECT_GT(pttl("fraction"), 59'000) << "a fraction of a millisecond rounds up";

  options_.key_prefix = unique_prefix();
  options_.default_ttl.reset();
  RedisCache<std::string, std::string> forever(options_);
  forever.put("k", "v");
  EXPECT_EQ(std::stoll(client.command({"PTTL", forever.redis_key("k")})), -1) << "no expiry";
}

TEST_F(RedisCacheTest, EntryExpiresInRedis) {
  RedisCache<std::string, std::string> cache(options_);
  cache.put("short", "v", milliseconds(1));
  RedisClient client(shared_redis_server());
  // Expiry runs on Redis' clock: wait until Redis reports the key gone (PTTL -2).
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return client.command({"PTTL", cache.redis_key("short")}) == "-2";
      },
      std::chrono::seconds(5), milliseconds(1)));
  EXPECT_EQ(cache.get("short"), std::nullopt);
}

TEST_F(RedisCacheTest, EraseReportsWhetherTheKeyWasThere) {
  RedisCache<int, int> cache(options_);
  cache.put(1, 100);
  EXPECT_TRUE(cache.erase(1));
  EXPECT_FALSE(cache.erase(1));
  EXPECT_EQ(cache.get(1), std::nullopt);
}

TEST_F(RedisCacheTest, BatchesRoundTripInOrderWithOneMget) {
  RedisCache<int, std::string> cache(options_);
  const std::vector<std::pair<int, std::string>> entries{{1, "one"}, {2, "two"}, {3, "three"}};
  cache.put_many(entries, minutes(1));
  RedisClient client(shared_redis_server());
  client.command({"CONFIG", "RESETSTAT"});

  const std::vector<int> keys{3, 4, 1, 2};
  const std::vector<std::optional<std::string>> values = cache.get_many(keys);
  EXPECT_EQ(values, (std::vector<std::optional<std::string>>{"three", std::nullopt, "one", "two"}));
  const std::string stats = client.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_mget:calls=1,"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_get:"), std::string::npos) << "no GET per key: " << stats;
  EXPECT_GT(std::stoll(client.command({"PTTL", cache.redis_key(2)})), 59'000);

  EXPECT_EQ(cache.stats().hits, 3u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().puts, 3u);
  EXPECT_TRUE(cache.get_many(std::vector<int>{}).empty());
}

TEST_F(RedisCacheTest, ValueThatDoesNotDecodeIsAMissCountedAsAReadError) {
  RedisCache<std::string, std::int64_t> cache(options_);
  RedisClient client(shared_redis_server());
  client.command({"SET", cache.redis_key("k"), "not a number"});

  EXPECT_EQ(cache.get("k"), std::nullopt);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.metrics().read_errors, 1u);
}

TEST_F(RedisCacheTest, SizeAndClearCoverOnlyTheKeysUnderThePrefix) {
  options_.key_prefix = unique_prefix("keel:cache:[glob*?]");  // pattern characters, escaped
  RedisCache<int, int> cache(options_);
  RedisCache<int, int> neighbour(options_for(shared_redis_server()));
  RedisClient client(shared_redis_server());
  // A key the prefix would match were it used as a pattern unescaped.
  std::string unrelated = options_.key_prefix + "unrelated";
  unrelated.replace(unrelated.find("[glob*?]"), 8, "g");
  client.command({"SET", unrelated, "1"});
  for (int i = 0; i < 2500; ++i) cache.put(i, i);  // more than one SCAN batch
  neighbour.put(1, 1);

  EXPECT_EQ(cache.size(), 2500u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.get(7), std::nullopt);
  EXPECT_EQ(neighbour.get(1), 1) << "another prefix's keys survive";
  EXPECT_EQ(client.command({"GET", unrelated}), "1");
  EXPECT_EQ(cache.capacity(), std::numeric_limits<std::size_t>::max());
}

TEST_F(RedisCacheTest, RedisDownReadsAreMissesAndWritesAreCountedNeverThrown) {
  options_.connection.port = testing::free_loopback_port();
  RedisCache<std::string, std::string> cache(options_);

  EXPECT_EQ(cache.get("k"), std::nullopt) << "a miss: the caller falls through to the source";
  EXPECT_NO_THROW(cache.put("k", "v"));
  EXPECT_FALSE(cache.erase("k"));
  EXPECT_EQ(cache.get_many(std::vector<std::string>{"a", "b"}),
            (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt}));
  EXPECT_NO_THROW(cache.clear());
  EXPECT_THROW(cache.size(), BackendError) << "size() has no honest answer without Redis";

  const RedisCacheMetrics metrics = cache.metrics();
  EXPECT_EQ(metrics.read_errors, 3u) << "get, get_many, size";
  EXPECT_EQ(metrics.write_errors, 3u) << "put, erase, clear";
  EXPECT_EQ(cache.stats().misses, 3u);
}

TEST_F(RedisCacheTest, RegistersStatsAndErrorsAsPrometheusCounters) {
  options_.connection.port = testing::free_loopback_port();  // every operation fails
  RedisCache<std::string, std::string> cache(options_);
  MetricsRegistry registry;
  Subscription exported = cache.register_metrics(registry, "users");
  cache.get("k");
  cache.put("k", "v");
  const std::string text = registry.render();
  for (const char* line : {R"(keel_cache_requests_total{cache="users",result="miss"} 1)",
                           R"(keel_redis_cache_errors_total{cache="users",op="read"} 1)",
                           R"(keel_redis_cache_errors_total{cache="users",op="write"} 1)"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST_F(RedisCacheTest, InvalidOptionsAndTtlsThrow) {
  RedisCacheOptions no_prefix = options_;
  no_prefix.key_prefix.clear();
  EXPECT_THROW((RedisCache<int, int>(no_prefix)), std::invalid_argument);
  RedisCacheOptions negative = options_;
  negative.default_ttl = milliseconds(-1);
  EXPECT_THROW((RedisCache<int, int>(negative)), std::invalid_argument);

  RedisCache<int, int> cache(options_);
  EXPECT_THROW(cache.put(1, 1, milliseconds(0)), std::invalid_argument);
  const std::vector<std::pair<int, int>> entries{{1, 1}};
  EXPECT_THROW(cache.put_many(entries, milliseconds(-5)), std::invalid_argument);
  EXPECT_EQ(cache.stats().puts, 0u);
}

}  // namespace
}  // namespace keel::redis
