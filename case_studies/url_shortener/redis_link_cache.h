// RedisLinkCache: the shortener's link cache shared by every server through Redis
// (docs/url_shortener.md, "Many nodes"), for ShortenerOptions::cache.
//
//   RedisLinkCache links({.connection = {.host = "10.0.0.5"}});
//   Shortener shortener(store, {.code_key = secret, .cache = &links});
//
// Links live in Redis (one string per code, JSON, with a ttl), so a link one server loaded is a
// hit on all of them. In front sits a small in-process L1 (local_capacity, 0 for none): a
// keel::redis::TwoTierCache, whose writes and deletes PUBLISH an invalidation that every server
// applies to its L1.
//
// Staleness: a delete on one server (Shortener::remove: tombstone in the store, then DEL in
// Redis with the invalidation in the same round trip) is seen by every other server as soon as
// the invalidation has arrived, one hop through Redis. While a server's subscription is down,
// its L1 is neither read nor filled, and it is cleared when the subscription is back; local_ttl
// bounds an L1 entry's life whatever happens. The race of cache-aside across servers (a server
// reads a link from the store just before another deletes it, and writes it to Redis just
// after) is closed by the Shortener, which reads the store again after each fill (shortener.h).
//
// When Redis fails, lookups are misses (the store answers) and writes are counted and logged:
// the service keeps working without the cache. A delete whose DEL did not reach Redis leaves
// the old entry until its ttl.
//
// Thread safety: all members are safe to call from any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "case_studies/url_shortener/link_store.h"
#include "keel/cache/cache.h"
#include "keel/core/clock.h"
#include "keel/redis/connection_options.h"

namespace keel::shortener {

struct RedisLinkCacheOptions {
  redis::ConnectionOptions connection{};
  // Prepended to the code in Redis (and names the invalidation channel); change the version
  // when the stored form changes. Default: "keel:shortener:link:v1:". REQUIRES: not empty.
  std::string key_prefix = "keel:shortener:link:v1:";
  // ttl of a link in Redis. Default: 10 min. REQUIRES: > 0.
  Duration ttl = std::chrono::minutes(10);
  // Links held in process in front of Redis; 0 = no L1 (every lookup asks Redis).
  // Default: 10,000.
  std::size_t local_capacity = 10'000;
  // ttl of a link in L1: the longest an entry lives there. Default: 30 s. REQUIRES: > 0.
  Duration local_ttl = std::chrono::seconds(30);
};

// How a Link is stored in Redis: a JSON object. decode() throws for anything else.
struct LinkCodec {
  static std::string encode(const Link& link);
  static Link decode(std::string_view bytes);
};

struct RedisLinkCacheMetrics {
  std::uint64_t l1_hits = 0;
  std::uint64_t redis_hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t invalidations_received = 0;  // from other servers, applied to L1
  std::uint64_t redis_errors = 0;            // reads and writes that failed
};

class RedisLinkCache final : public cache::Cache<std::string, Link> {
 public:
  // Does not connect (connections open on first use; the invalidation subscription starts in
  // the background). Throws std::invalid_argument for invalid options. `clock` (for the L1 ttl
  // and the pacing of warnings) must outlive the cache.
  explicit RedisLinkCache(RedisLinkCacheOptions options = {}, const Clock& clock = default_clock());
  ~RedisLinkCache() override;
  RedisLinkCache(const RedisLinkCache&) = delete;
  RedisLinkCache& operator=(const RedisLinkCache&) = delete;

  std::optional<Link> get(const std::string& code) override;
  void put(const std::string& code, Link link, std::optional<Duration> ttl = std::nullopt) override;
  bool erase(const std::string& code) override;
  // L1's size and capacity (Redis has no bound of its own here: its maxmemory decides).
  std::size_t size() const override;
  std::size_t capacity() const override;
  // Every server's L1 and the links in Redis.
  void clear() override;
  cache::CacheStats stats() const override;

  RedisLinkCacheMetrics metrics() const;
  // Whether L1 is in use: without an L1, always false; with one, once the invalidation
  // subscription is live.
  bool l1_active() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::shortener
