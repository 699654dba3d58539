// keel::ratelimit::KeyedRateLimiter: one limiter per key (client id, IP address, API key), with
// memory bounded by `max_keys`.
//
// Keys live in shards, each with its own lock, LRU order and share of `max_keys`, so that
// decisions for different keys rarely meet on one lock. When a shard is over its share it first
// drops a key whose limiter is back to full (is_full(): forgetting it changes no decision),
// looking at the least recently used few; only if none is idle does the least recently used key
// go, which is counted as an eviction (that key starts full again next time: it may be allowed
// more than its limit, and the counter says how often this happened).
//
// Thread safety: all members are safe to call from any number of threads.
// Complexity: O(1) per decision plus the limiter's own cost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

struct KeyedOptions {
  // Upper bound on keys held at once (each shard holds at most its share). Default: 100,000.
  // REQUIRES: > 0.
  std::size_t max_keys = 100'000;
  // Number of shards; 0 picks one from the hardware concurrency. Rounded up to a power of two
  // and never more than max_keys.
  std::size_t shards = 0;
  // How many least recently used keys are checked for an idle one before evicting. Default: 8.
  std::size_t idle_scan = 8;
};

struct KeyedMetrics {
  std::uint64_t allowed = 0;
  std::uint64_t denied = 0;
  std::uint64_t keys = 0;          // keys held now
  std::uint64_t idle_dropped = 0;  // keys dropped because they were back to full (harmless)
  std::uint64_t evicted = 0;       // keys dropped while not full (their state was lost)
};

class KeyedRateLimiter {
 public:
  // Makes the fresh, full limiter of a new key; the key is passed so that limits can differ per
  // key (plans, tiers). Called with the key's shard locked: keep it quick, do not call back.
  using Factory = std::function<std::unique_ptr<RateLimiter>(std::string_view key)>;

  // Each new key gets `factory(key)`.
  explicit KeyedRateLimiter(Factory factory, KeyedOptions options = {});
  // Each new key gets make_limiter(limit, clock).
  explicit KeyedRateLimiter(const Limit& limit, KeyedOptions options = {},
                            const Clock& clock = default_clock());
  ~KeyedRateLimiter();
  KeyedRateLimiter(const KeyedRateLimiter&) = delete;
  KeyedRateLimiter& operator=(const KeyedRateLimiter&) = delete;

  Decision try_acquire(std::string_view key, std::int64_t permits = 1);
  bool allow(std::string_view key, std::int64_t permits = 1) {
    return try_acquire(key, permits).allowed;
  }

  // Forgets a key (its next request starts full). Returns whether it was held.
  bool erase(std::string_view key);
  // Drops every key whose limiter is full; returns how many. Optional housekeeping: the bound
  // holds without it.
  std::size_t purge_idle();
  std::size_t size() const;
  KeyedMetrics metrics() const;

  // keel_ratelimit_decisions_total{limiter,outcome}, keel_ratelimit_keys{limiter} and
  // keel_ratelimit_key_drops_total{limiter,reason="idle"|"evicted"}.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const;

 private:
  struct Shard;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::ratelimit
