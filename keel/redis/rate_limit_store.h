// keel::redis::RateLimitStore: a ratelimit::Store that keeps the state in Redis, so that every
// node of a service shares one count per key.
//
// Each decision is one round trip running one Lua script (EVALSHA; the script is loaded once and
// loaded again when the server answers NOSCRIPT), so it is atomic however many nodes ask at
// once. The algorithms and their Decisions are those of the in-process limiters (token bucket,
// GCRA, leaky bucket, fixed window, sliding window log and counter); the state lives under
// redis_key(key, algorithm), whose hash tag is the caller's key so that a Redis Cluster keeps
// all of one key's state on one slot, and expires on its own once the key is back to its full
// allowance. The store talks to one server (or a cluster-aware proxy): it does not follow
// MOVED redirections itself. Fixed and sliding windows are aligned to the Unix epoch.
//
// Complexity: O(1) in Redis per decision, but for the sliding window log: O(log L) per entry
// that leaves the window and, on a denial, O(entries walked) to find retry_after; at most L
// entries are held.
//
// Time is the server's (TIME, the default: one clock for every node) or the caller's
// Clock::wall_now() (to test against a ManualClock). Times are microseconds held in doubles:
// exact when 10^6 / rate is a whole number of microseconds, otherwise to within a fraction of a
// microsecond per decision; window algorithms take windows in whole microseconds and are exact
// while limit x window (us) < 2^53. With TimeSource::clock, TTLs are computed from that clock
// but run in real time, so a clock slower than real time may see state expire early.
//
// When Redis cannot be reached or fails, the decision follows `on_failure` and the failure is
// counted. A pooled connection the server had closed (restart, failover) is replaced and the
// command sent again, once; should Redis have run it before closing, the permits are taken twice
// (stricter, never looser). Invalid arguments always throw std::invalid_argument.
//
// Thread safety: all members are safe to call from any number of threads; up to
// connection.pool_size decisions are in flight at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/rate_limiter.h"
#include "keel/ratelimit/store.h"
#include "keel/redis/connection_options.h"

namespace keel::redis {

enum class TimeSource {
  server,  // Redis' TIME inside the script: no skew between the nodes that share a key
  clock,   // the store's Clock::wall_now(), sent with each decision
};

enum class FailureMode {
  fail_open,    // allow the request: Redis being down must not take the service down
  fail_closed,  // deny it, with retry_after = failure_retry_after: protect what is behind
};

struct RateLimitStoreOptions {
  ConnectionOptions connection;
  // Prepended to every key name. Default: "keel:rl:". REQUIRES: no '{' or '}' (the hash tag is
  // the caller's key).
  std::string key_prefix = "keel:rl:";
  // Default: server.
  TimeSource time_source = TimeSource::server;
  // Default: fail_closed, so that an outage never lets unlimited traffic through to the
  // resource the limit protects; services whose limit is a courtesy choose fail_open.
  FailureMode on_failure = FailureMode::fail_closed;
  // retry_after (and reset_after) of a request denied by fail_closed. Default: 1 s.
  // REQUIRES: > 0.
  Duration failure_retry_after = std::chrono::seconds(1);
};

// Counters since construction. Exact under concurrency.
struct RateLimitStoreMetrics {
  std::uint64_t allowed = 0;  // decisions Redis made
  std::uint64_t denied = 0;
  std::uint64_t errors = 0;       // failed exchanges with Redis, recovered or not
  std::uint64_t failed_open = 0;  // decisions made without Redis (by on_failure)
  std::uint64_t failed_closed = 0;
  std::uint64_t script_loads = 0;  // SCRIPT LOADs: one per script, then one per NOSCRIPT
};

class RateLimitStore final : public ratelimit::Store {
 public:
  // Does not connect: connections open on first use, so the store can be built while Redis is
  // down. Throws std::invalid_argument for invalid options. `clock` gives the time of decisions
  // with TimeSource::clock, and paces the warnings logged on failures (one per 10 s, with the
  // count); it must outlive the store.
  explicit RateLimitStore(RateLimitStoreOptions options = {}, const Clock& clock = default_clock());
  ~RateLimitStore() override;
  RateLimitStore(const RateLimitStore&) = delete;
  RateLimitStore& operator=(const RateLimitStore&) = delete;

  // Throws std::invalid_argument for an invalid limit, an empty key, permits < 1 or a window
  // that is not a whole number of microseconds; never throws for a Redis failure (see
  // on_failure). A fail_open decision has remaining 0 and reset_after 0.
  ratelimit::Decision try_acquire(std::string_view key, const ratelimit::Limit& limit,
                                  std::int64_t permits = 1) override;

  RateLimitStoreMetrics metrics() const noexcept;

  // Exposes metrics() until the Subscription ends, as
  //   keel_ratelimit_decisions_total{limiter="<name>",outcome="allowed"|"denied"},
  //   keel_ratelimit_store_failures_total{limiter,mode="fail_open"|"fail_closed"},
  //   keel_redis_errors_total{limiter} and keel_redis_script_loads_total{limiter}.
  // The store must outlive the Subscription.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const;

  // The Redis key holding `key`'s state for `algorithm`, e.g. "keel:rl:{user-42}:tb". Braces and
  // '%' in `key` are percent-encoded so that the hash tag is exactly the key. The sliding window
  // log also keeps the sum of its permits in redis_key(...) + ":sum".
  std::string redis_key(std::string_view key, ratelimit::Algorithm algorithm) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::redis
