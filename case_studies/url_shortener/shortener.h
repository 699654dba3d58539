// The URL shortener's core: creating links (validation, dedup, aliases, expiry), resolving codes
// through a cache-aside cache, deleting (tombstones). The HTTP layer (server.h) and analytics
// sit on top.
//
//   SqliteLinkStore store("links.db");
//   Shortener shortener(store, {.base_url = "https://sho.rt", .code_key = secret});
//   CreateResult r = shortener.create({.url = "https://example.com/some/long/path"});
//   r.link.code   // "k3F9aZ0"; the same URL again returns the same code with created = false
//   Resolution to = shortener.resolve("k3F9aZ0");   // found / not_found / gone
//
// Codes come from counter blocks reserved in the store (see link_store.h) through the keyed
// bijection of codes.h: unique without a lookup, not guessable from one another.
//
// Many servers (docs/url_shortener.md, "Many nodes"): give them one PostgresLinkStore database,
// and through the options a shared counter source and cache,
//
//   PostgresLinkStore store(conninfo);
//   RedisCounterSource counters({.connection = redis}, store);
//   RedisLinkCache links({.connection = redis});
//   Shortener shortener(store, {.code_key = secret, .counter_source = &counters, .cache = &links});
//
// so that they never issue the same code, share hot links, and see each other's deletes.
//
// Thread safety: every member is safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "case_studies/url_shortener/codes.h"
#include "case_studies/url_shortener/link_store.h"
#include "case_studies/url_shortener/url.h"
#include "keel/cache/cache_aside.h"
#include "keel/cache/lru_cache.h"
#include "keel/core/clock.h"

namespace keel::shortener {

struct ShortenerOptions {
  // Prefix of short_url; its host is refused as a target (no links to the shortener itself).
  std::string base_url = "http://127.0.0.1:8080";
  // The key of the code bijection. REQUIRES: non-empty. Keep it secret (whoever has it can list
  // the codes in order) and fixed for the life of the database. Changing it keeps codes unique
  // (the store refuses a taken code and the next counter value is used), but mixes two orders.
  std::string code_key = "keel-development-key";
  // Counter values reserved per round trip to the store.
  std::uint64_t counter_block = 100;
  // Where counter blocks come from: nullptr = the store (LinkStore is a CounterSource); else
  // e.g. a RedisCounterSource. Must outlive the Shortener.
  CounterSource* counter_source = nullptr;
  // The cache in front of the store (cache-aside). nullptr = an in-process LruCache of
  // cache_capacity links, each for cache_ttl. A cache given here (e.g. a RedisLinkCache) is
  // taken to be shared with other servers: after each fill of a live link, the store is read
  // again, and a link deleted meanwhile by another server replaces it in the cache. That closes
  // the race of cache-aside across servers (a fill of a link read just before another server's
  // delete, written just after its invalidation, would otherwise stay until its ttl) at the cost
  // of a second store read per miss. Must outlive the Shortener.
  cache::Cache<std::string, Link>* cache = nullptr;
  std::size_t cache_capacity = 100'000;
  Duration cache_ttl = std::chrono::minutes(10);
  // How long this process remembers that a code does not exist (so that scans of random codes
  // do not reach the store). Kept in process even with a shared cache: a code created on
  // another server may answer "not found" here for this long if it was asked for just before.
  // Default: 5 s. REQUIRES: > 0.
  Duration negative_ttl = std::chrono::seconds(5);
  const Clock* clock = nullptr;  // nullptr = default_clock()
};

struct CreateRequest {
  std::string url;
  std::optional<std::string> alias = std::nullopt;
  std::optional<WallTime> expires_at = std::nullopt;
};

struct CreateResult {
  Link link;
  bool created = false;  // false: an existing plain link for the same URL (dedup)
};

// A request the service refuses: the HTTP layer maps `code` to a status.
class ShortenerError : public std::runtime_error {
 public:
  ShortenerError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  // invalid_url, invalid_alias, alias_taken, invalid_expiry
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

struct Resolution {
  enum class State { found, not_found, gone } state = State::not_found;
  std::string url;  // when found
};

class Shortener {
 public:
  Shortener(LinkStore& store, ShortenerOptions options = {});

  CreateResult create(const CreateRequest& request);
  Resolution resolve(std::string_view code);
  std::optional<Link> find(std::string_view code);
  // Tombstones a link; false when there is no live link with that code.
  bool remove(std::string_view code);

  std::string short_url(std::string_view code) const;
  cache::CacheAsideStats cache_stats() const { return links_.stats(); }

 private:
  class CheckedFills;
  std::uint64_t next_counter();

  LinkStore& store_;
  ShortenerOptions options_;
  const Clock& clock_;
  CounterSource& counters_;
  CodeGenerator codes_;
  UrlPolicy policy_;
  std::mutex counter_mutex_;
  std::uint64_t next_ = 0;
  std::uint64_t end_ = 0;  // [next_, end_) reserved and unused
  // The in-process LruCache, or the given cache behind CheckedFills.
  std::unique_ptr<cache::Cache<std::string, Link>> cache_;
  cache::CacheAside<std::string, Link> links_;
};

}  // namespace keel::shortener
