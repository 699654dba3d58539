// keel::redis::RedisCache: a cache::Cache kept in Redis, shared by every node of a service.
//
//   redis::RedisCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec> users(
//       {.connection = {.host = "10.0.0.5"}, .key_prefix = "app:user:v1:",
//        .default_ttl = std::chrono::minutes(5)});
//   cache::CacheAside<std::int64_t, User> reads(users, load_user_from_database);
//
// Each key is stored as the string key_prefix + KeyCodec::encode(key) holding
// ValueCodec::encode(value), written with SET ... PX <ttl in ms> so that Redis expires it.
// get_many() is one MGET and put_many() one pipeline of SETs: one round trip per batch.
//
// Failure policy: a cache never takes the service down. When Redis cannot be reached, times out
// or answers with an error, get() returns nullopt (a miss: the caller falls through to the
// source), put() and erase() do nothing more, and each failure is counted in metrics() and
// logged as a warning (at most one line per 10 s of the clock, with the count), never dropped
// silently. Give entries a ttl: it bounds how long a value whose erase() failed stays stale.
// Only invalid arguments throw (std::invalid_argument), and size(), which has no honest answer
// to give without Redis (BackendError).
//
// stats(): hits, misses and puts of this instance; evictions and expirations stay 0 (Redis
// evicts and expires on its own, unseen). capacity() is unbounded: Redis' maxmemory decides.
//
// Thread safety: all members are safe to call from any number of threads; up to
// connection.pool_size commands are in flight at once.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/cache/cache.h"
#include "keel/core/clock.h"
#include "keel/redis/codec.h"
#include "keel/redis/internal/redis_cache_core.h"
#include "keel/redis/redis_cache_options.h"

namespace keel::redis {

template <class K, class V, Codec<K> KeyCodec, Codec<V> ValueCodec>
class TwoTierCache;

template <class K, class V, Codec<K> KeyCodec = DefaultCodec<K>,
          Codec<V> ValueCodec = DefaultCodec<V>>
class RedisCache final : public cache::Cache<K, V> {
 public:
  // Does not connect: connections open on first use, so the cache can be built while Redis is
  // down. Throws std::invalid_argument for invalid options. `clock` paces the failure warnings;
  // it must outlive the cache.
  explicit RedisCache(RedisCacheOptions options = {}, const Clock& clock = default_clock())
      : core_(std::move(options), clock) {}

  std::optional<V> get(const K& key) override { return get_encoded(key, KeyCodec::encode(key)); }

  void put(const K& key, V value, std::optional<Duration> ttl = std::nullopt) override {
    internal::RedisCacheCore::require_ttl(ttl);
    core_.put(KeyCodec::encode(key), ValueCodec::encode(value), ttl);
  }

  // Whether Redis held the key; false as well when Redis failed (counted in write_errors).
  bool erase(const K& key) override { return core_.erase(KeyCodec::encode(key)).value_or(false); }

  // The values of `keys`, in their order (nullopt for each miss), in one MGET.
  std::vector<std::optional<V>> get_many(std::span<const K> keys) {
    std::vector<std::string> encoded;
    encoded.reserve(keys.size());
    for (const K& key : keys) encoded.push_back(KeyCodec::encode(key));
    std::vector<std::optional<std::string>> found = core_.get_many(encoded);
    std::vector<std::optional<V>> values;
    values.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      values.push_back(decode(keys[i], std::move(found[i])));
      core_.record_lookup(values.back().has_value());
    }
    return values;
  }

  // Stores every entry, all with `ttl` (or the default ttl), in one pipeline of SETs (not
  // atomic: a failure midway may leave some stored). Throws std::invalid_argument for a ttl <= 0.
  void put_many(std::span<const std::pair<K, V>> entries,
                std::optional<Duration> ttl = std::nullopt) {
    internal::RedisCacheCore::require_ttl(ttl);
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(entries.size());
    for (const auto& [key, value] : entries) {
      encoded.emplace_back(KeyCodec::encode(key), ValueCodec::encode(value));
    }
    core_.put_many(encoded, ttl);
  }

  // Keys under key_prefix, counted with SCAN: O(keys in the Redis database) time, in batches
  // that never block Redis for long, and O(keys under the prefix) memory. Throws BackendError
  // when Redis fails. Meant for tests and operators, not for a request path.
  std::size_t size() const override { return core_.size(); }
  std::size_t capacity() const override { return std::numeric_limits<std::size_t>::max(); }
  // Deletes every key under key_prefix (SCAN, then UNLINK per batch), at the same cost as size().
  // Keys written meanwhile may survive. A failure is counted and logged.
  void clear() override { core_.clear(); }

  cache::CacheStats stats() const override { return core_.stats(); }
  RedisCacheMetrics metrics() const noexcept { return core_.metrics(); }

  // Exposes stats() (as keel::cache::register_metrics does) and the Redis failures,
  // keel_redis_cache_errors_total{cache,op="read"|"write"}, until the Subscription ends. The cache
  // must outlive it.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const {
    const std::string label(name);
    std::vector<Subscription> parts;
    parts.push_back(cache::register_metrics(registry, name, *this));
    parts.push_back(
        registry.counter_fn("keel_redis_cache_errors_total", "Redis cache operations that failed",
                            {{"cache", label}, {"op", "read"}},
                            [this] { return static_cast<double>(metrics().read_errors); }));
    parts.push_back(
        registry.counter_fn("keel_redis_cache_errors_total", "Redis cache operations that failed",
                            {{"cache", label}, {"op", "write"}},
                            [this] { return static_cast<double>(metrics().write_errors); }));
    return Subscription::all(std::move(parts));
  }

  // The Redis key holding `key`: key_prefix + KeyCodec::encode(key).
  std::string redis_key(const K& key) const { return core_.redis_key(KeyCodec::encode(key)); }
  const RedisCacheOptions& options() const noexcept { return core_.options(); }

 private:
  template <class K2, class V2, Codec<K2> KC, Codec<V2> VC>
  friend class TwoTierCache;

  std::optional<V> get_encoded(const K& key, std::string_view encoded) {
    std::optional<V> value = decode(key, core_.get(encoded));
    core_.record_lookup(value.has_value());
    return value;
  }

  std::optional<V> decode(const K& key, std::optional<std::string> bytes) {
    if (!bytes) return std::nullopt;
    try {
      return ValueCodec::decode(*bytes);
    } catch (const std::exception& e) {
      core_.record_decode_error(redis_key(key), e.what());
      return std::nullopt;
    }
  }

  mutable internal::RedisCacheCore core_;
};

}  // namespace keel::redis
