// keel::redis::TwoTierCache: an in-process cache (L1) in front of Redis (L2), kept coherent
// across the nodes of a service by an invalidation broadcast on a Redis pub/sub channel.
//
//   cache::LruCache<std::int64_t, User> local(10'000, {.default_ttl = std::chrono::seconds(30)});
//   redis::RedisCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec> shared(
//       {.key_prefix = "app:user:v1:", .default_ttl = std::chrono::minutes(5)});
//   redis::TwoTierCache<std::int64_t, User, redis::DefaultCodec<std::int64_t>, UserCodec> users(
//       local, shared);
//   cache::CacheAside<std::int64_t, User> reads(users, load_user);   // reads.invalidate(id)
//
//   get(k)    L1 hit -> value. L1 miss -> L2 (GET); an L2 hit fills L1. Else a miss.
//   put(k)    SET in L2 and PUBLISH "k changed" in one round trip, then L1 (erased instead
//             when Redis failed: L1 never holds what the other nodes cannot see).
//   erase(k)  DEL in L2 and PUBLISH in one round trip, then erase from L1.
//   clear()   L2 (SCAN + UNLINK), PUBLISH "everything changed", L1.
//
// Every node subscribes to the channel (a connection and a thread of its own) and erases from
// its L1 the keys other nodes changed, so that an update on one node is seen by the others once
// the broadcast has arrived (one hop through Redis after the write).
// A node ignores its own broadcasts. An L1 fill that raced with an invalidation of the same key
// (the value read from L2 may predate it) is dropped, so a node never keeps a value older than
// the last invalidation it received.
//
// While the subscription is down (Redis unreachable, connection lost), invalidations from other
// nodes cannot arrive, so L1 is not trusted: it is neither read nor filled (gets go to L2, and
// with Redis down they are misses that fall through to the source), and it is cleared when the
// subscription is back. erase() drops the key from L1 whatever Redis does; so does put() when
// it cannot store the value in Redis.
// Redis failures are counted (l2.metrics(), metrics()) and logged, never silent.
//
// L1 must be dedicated to this TwoTierCache (it is cleared on every subscription); L1 and L2
// must outlive it. Use one channel per cache (the default derives it from L2's key prefix).
//
// Thread safety: all members are safe to call from any number of threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "keel/cache/cache.h"
#include "keel/core/backoff.h"
#include "keel/core/clock.h"
#include "keel/redis/codec.h"
#include "keel/redis/internal/invalidation_subscriber.h"
#include "keel/redis/internal/redis_cache_core.h"
#include "keel/redis/redis_cache.h"

namespace keel::redis {

struct TwoTierCacheOptions {
  // The pub/sub channel of the invalidations: the same on every node of one cache, different
  // for caches that share a Redis. Default: empty, meaning L2's key_prefix + "invalidations".
  std::string channel{};
  // When the subscription has been quiet this long, it is checked with PING; without an answer
  // within as long again, the connection is taken for dead and opened again (meanwhile L1 is
  // bypassed). Default: 5 s. REQUIRES: > 0.
  Duration health_check_interval = std::chrono::seconds(5);
  // Delays between attempts to subscribe again. max_attempts is ignored: it tries for as long as
  // the cache lives. Default: 50 ms doubling up to 5 s, full jitter. REQUIRES: valid.
  BackoffPolicy resubscribe{.initial = std::chrono::milliseconds(50),
                            .multiplier = 2.0,
                            .max_delay = std::chrono::seconds(5),
                            .max_attempts = 0,
                            .jitter = Jitter::full};
};

// Counters since construction. Exact under concurrency. L2's own counters (its read and write
// errors included) are in the RedisCache's stats() and metrics().
struct TwoTierCacheMetrics {
  std::uint64_t l1_hits = 0;
  std::uint64_t l2_hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t puts = 0;
  // Lookups that skipped L1 because the subscription was down.
  std::uint64_t l1_bypasses = 0;
  // Broadcasts sent (by put, erase, clear) and other nodes' broadcasts applied to L1.
  std::uint64_t invalidations_sent = 0;
  std::uint64_t invalidations_received = 0;
  // Broadcasts that could not be read (L1 was cleared instead).
  std::uint64_t malformed_invalidations = 0;
  // Confirmed subscriptions (each cleared L1), and subscriber connections that failed or were
  // lost.
  std::uint64_t subscriptions = 0;
  std::uint64_t subscription_failures = 0;
};

template <class K, class V, Codec<K> KeyCodec = DefaultCodec<K>,
          Codec<V> ValueCodec = DefaultCodec<V>>
class TwoTierCache final : public cache::Cache<K, V> {
 public:
  using L2 = RedisCache<K, V, KeyCodec, ValueCodec>;

  // Starts subscribing (in the background: until subscribed(), L1 is bypassed). Throws
  // std::invalid_argument for invalid options. `clock` paces the failure warnings.
  TwoTierCache(cache::Cache<K, V>& l1, L2& l2, TwoTierCacheOptions options = {},
               const Clock& clock = default_clock())
      : l1_(l1),
        l2_(l2),
        channel_(options.channel.empty() ? l2.options().key_prefix + "invalidations"
                                         : options.channel),
        node_id_(make_node_id()) {
    subscriber_ = std::make_unique<internal::InvalidationSubscriber>(
        l2.options().connection, channel_, options.health_check_interval,
        with_unlimited_attempts(options.resubscribe),
        internal::InvalidationSubscriber::Callbacks{
            .on_subscribed = [this] { clear_l1(); },
            .on_message = [this](std::string_view message) { receive(message); }},
        clock);
  }

  std::optional<V> get(const K& key) override {
    const bool trusted = subscribed();
    if (trusted) {
      if (std::optional<V> value = l1_.get(key)) {
        count(l1_hits_);
        return value;
      }
    } else {
      count(l1_bypasses_);
    }
    const std::string encoded = KeyCodec::encode(key);
    const std::size_t stripe = stripe_of(encoded);
    const std::uint64_t before = version(stripe);  // before reading L2: see fill()
    std::optional<V> value = l2_.get_encoded(key, encoded);
    if (!value) {
      count(misses_);
      return std::nullopt;
    }
    count(l2_hits_);
    if (trusted) fill(key, *value, std::nullopt, stripe, before);
    return value;
  }

  void put(const K& key, V value, std::optional<Duration> ttl = std::nullopt) override {
    internal::RedisCacheCore::require_ttl(ttl);
    count(puts_);
    const bool trusted = subscribed();
    const std::string encoded = KeyCodec::encode(key);
    const std::size_t stripe = stripe_of(encoded);
    const std::uint64_t before = version(stripe);
    const std::string message = invalidation('k', encoded);
    const bool stored =
        l2_.core_.put(encoded, ValueCodec::encode(value), ttl, publication(message));
    if (stored) count(invalidations_sent_);
    // Like a received invalidation: bump the version after the write (see fill()), then erase
    // what L1 held, which is older than this write. The fill below may be dropped (another put
    // of the key moved the version meanwhile, and that put may have written to Redis first), so
    // the erase cannot be left to it. Without Redis, L1 is not filled: it never holds what the
    // other nodes cannot see.
    invalidate_stripe(stripe);
    l1_.erase(key);
    if (trusted && stored) fill(key, std::move(value), ttl, stripe, before + 1);  // +1: ours
  }

  // Whether either tier held the key. L1 is erased even when Redis fails.
  bool erase(const K& key) override {
    const std::string encoded = KeyCodec::encode(key);
    const std::string message = invalidation('k', encoded);
    const std::optional<bool> in_l2 = l2_.core_.erase(encoded, publication(message));
    if (in_l2) count(invalidations_sent_);
    invalidate_stripe(stripe_of(encoded));
    const bool in_l1 = l1_.erase(key);
    return in_l1 || in_l2.value_or(false);
  }

  // L1's: what this node holds in memory (L2 has its own size()).
  std::size_t size() const override { return l1_.size(); }
  std::size_t capacity() const override { return l1_.capacity(); }

  // Clears L2 (see RedisCache::clear), every node's L1 and this one's.
  void clear() override {
    l2_.core_.clear();
    const std::string message = invalidation('c', {});
    if (l2_.core_.publish(publication(message))) count(invalidations_sent_);
    clear_l1();
  }

  cache::CacheStats stats() const override {
    return {.hits = read(l1_hits_) + read(l2_hits_), .misses = read(misses_), .puts = read(puts_)};
  }

  // Exposes keel_two_tier_cache_requests_total{cache,result="l1_hit"|"l2_hit"|"miss"|
  // "l1_bypass"} and keel_two_tier_cache_invalidations_total{cache,direction="sent"|"received"}
  // until the Subscription ends. The cache must outlive it.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const {
    const std::string label(name);
    std::vector<Subscription> parts;
    const auto add = [&](std::string_view metric, std::string_view help, Labels labels,
                         std::uint64_t TwoTierCacheMetrics::*field) {
      parts.push_back(registry.counter_fn(
          metric, help, labels, [this, field] { return static_cast<double>(metrics().*field); }));
    };
    constexpr std::string_view kRequests = "keel_two_tier_cache_requests_total";
    constexpr std::string_view kRequestsHelp = "Two-tier cache lookups by where they were answered";
    add(kRequests, kRequestsHelp, {{"cache", label}, {"result", "l1_hit"}},
        &TwoTierCacheMetrics::l1_hits);
    add(kRequests, kRequestsHelp, {{"cache", label}, {"result", "l2_hit"}},
        &TwoTierCacheMetrics::l2_hits);
    add(kRequests, kRequestsHelp, {{"cache", label}, {"result", "miss"}},
        &TwoTierCacheMetrics::misses);
    add(kRequests, kRequestsHelp, {{"cache", label}, {"result", "l1_bypass"}},
        &TwoTierCacheMetrics::l1_bypasses);
    constexpr std::string_view kInvalidations = "keel_two_tier_cache_invalidations_total";
    constexpr std::string_view kInvalidationsHelp = "Invalidation broadcasts";
    add(kInvalidations, kInvalidationsHelp, {{"cache", label}, {"direction", "sent"}},
        &TwoTierCacheMetrics::invalidations_sent);
    add(kInvalidations, kInvalidationsHelp, {{"cache", label}, {"direction", "received"}},
        &TwoTierCacheMetrics::invalidations_received);
    return Subscription::all(std::move(parts));
  }

  TwoTierCacheMetrics metrics() const noexcept {
    return {.l1_hits = read(l1_hits_),
            .l2_hits = read(l2_hits_),
            .misses = read(misses_),
            .puts = read(puts_),
            .l1_bypasses = read(l1_bypasses_),
            .invalidations_sent = read(invalidations_sent_),
            .invalidations_received = read(invalidations_received_),
            .malformed_invalidations = read(malformed_invalidations_),
            .subscriptions = subscriber_->subscriptions(),
            .subscription_failures = subscriber_->failures()};
  }

  // Whether the invalidation subscription is live, and so L1 in use.
  bool subscribed() const noexcept { return subscriber_->subscribed(); }
  const std::string& channel() const noexcept { return channel_; }

 private:
  // Invalidations are counted per stripe of keys (by hash), and all at once for clears; a
  // stripe's version is the sum of both, which grows whenever either does.
  static constexpr std::size_t kStripes = 256;
  static constexpr std::size_t kNodeIdLength = 16;

  static BackoffPolicy with_unlimited_attempts(BackoffPolicy policy) {
    policy.max_attempts = 0;
    return policy;
  }

  static std::string make_node_id() {
    std::random_device random;
    const std::uint64_t id = (std::uint64_t{random()} << 32) | random();
    std::string text(kNodeIdLength, '0');
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < kNodeIdLength; ++i) text[i] = kHex[(id >> (4 * i)) & 0xf];
    return text;
  }

  static std::size_t stripe_of(std::string_view encoded_key) {
    return std::hash<std::string_view>{}(encoded_key) % kStripes;
  }

  static void count(std::atomic<std::uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  static std::uint64_t read(const std::atomic<std::uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  }

  std::uint64_t version(std::size_t stripe) const {
    return stripes_[stripe].load(std::memory_order_seq_cst) +
           clears_.load(std::memory_order_seq_cst);
  }

  // Every invalidation (own or received) bumps the version AFTER the write it stands for reached
  // L2, then erases from L1.
  void invalidate_stripe(std::size_t stripe) {
    stripes_[stripe].fetch_add(1, std::memory_order_seq_cst);
  }

  void clear_l1() {
    clears_.fetch_add(1, std::memory_order_seq_cst);
    l1_.clear();
  }

  // Puts `value` in L1 unless the key's version moved from `expected` (an invalidation since
  // `value` was read from, or written to, L2), and takes it out again if the version moves while
  // it goes in. An invalidation bumps the version after its L2 write and erases L1 after that,
  // so either the check below sees it, or this put precedes that erase.
  void fill(const K& key, V value, std::optional<Duration> ttl, std::size_t stripe,
            std::uint64_t expected) {
    if (version(stripe) != expected) return;
    l1_.put(key, std::move(value), ttl);
    if (version(stripe) != expected) l1_.erase(key);
  }

  // Message: node id, then 'k' and the encoded key, or 'c' (clear).
  std::string invalidation(char op, std::string_view encoded_key) const {
    std::string message;
    message.reserve(kNodeIdLength + 1 + encoded_key.size());
    message += node_id_;
    message += op;
    message += encoded_key;
    return message;
  }

  internal::Publication publication(std::string_view message) const {
    return {.channel = channel_, .message = message};
  }

  // On the subscriber's thread.
  void receive(std::string_view message) {
    if (message.size() <= kNodeIdLength) return malformed();
    if (message.substr(0, kNodeIdLength) == node_id_) return;  // ours: applied already
    const char op = message[kNodeIdLength];
    const std::string_view encoded = message.substr(kNodeIdLength + 1);
    if (op == 'c') {
      clear_l1();
    } else if (op == 'k') {
      invalidate_stripe(stripe_of(encoded));
      std::optional<K> key;
      try {
        key = KeyCodec::decode(encoded);
      } catch (const std::exception&) {
        return malformed();
      }
      l1_.erase(*key);
    } else {
      return malformed();
    }
    count(invalidations_received_);
  }

  // A broadcast this node cannot apply: the only safe answer is to drop all of L1.
  void malformed() {
    count(malformed_invalidations_);
    clear_l1();
  }

  cache::Cache<K, V>& l1_;
  L2& l2_;
  const std::string channel_;
  const std::string node_id_;
  std::array<std::atomic<std::uint64_t>, kStripes> stripes_{};
  std::atomic<std::uint64_t> clears_{0};
  std::atomic<std::uint64_t> l1_hits_{0}, l2_hits_{0}, misses_{0}, puts_{0}, l1_bypasses_{0},
      invalidations_sent_{0}, invalidations_received_{0}, malformed_invalidations_{0};
  // Last: destroyed first, so that its thread stops before anything it calls goes.
  std::unique_ptr<internal::InvalidationSubscriber> subscriber_;
};

}  // namespace keel::redis
