// keel::ratelimit::RateLimiter: the one interface every rate-limiting algorithm implements.
//
// A decision is a value, never an exception: `try_acquire(n)` says whether n permits were granted
// and, either way, how many remain, when a denied request would pass and when the limiter is back
// to its full allowance. Everything a 429 response needs (see http_headers.h) is in the Decision.
//
// Thread safety: every implementation is safe to call from any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::ratelimit {

struct Decision {
  bool allowed = false;
  std::int64_t limit = 0;      // capacity (bucket) or limit per window
  std::int64_t remaining = 0;  // whole permits still available right after this decision
  Duration retry_after{};      // 0 when allowed; else the wait after which the same request would
                               // pass; Duration::max() when it never can (permits > capacity)
  Duration reset_after{};      // wait until the limiter is back to its full allowance
  explicit operator bool() const noexcept { return allowed; }
};

// Decisions made so far. Exact under concurrency.
struct RateLimiterMetrics {
  std::uint64_t allowed = 0;
  std::uint64_t denied = 0;
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  RateLimiter() = default;
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes `permits` (>= 1, else std::invalid_argument) if the algorithm allows it now; a denied
  // request changes nothing.
  virtual Decision try_acquire(std::int64_t permits = 1) = 0;
  bool allow(std::int64_t permits = 1) { return try_acquire(permits).allowed; }

  // True when the limiter is back to its full allowance, so that replacing it with a fresh one
  // would change no decision (keyed limiters drop such idle keys first).
  virtual bool is_full() const = 0;

  RateLimiterMetrics metrics() const noexcept {
    return {allowed_.load(std::memory_order_relaxed), denied_.load(std::memory_order_relaxed)};
  }

  // Exposes the counters as keel_ratelimit_decisions_total{limiter="<name>",outcome=...} until the
  // Subscription ends. The limiter must outlive the Subscription.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const;

 protected:
  // Counts the decision and returns it; implementations end try_acquire with it.
  Decision record(Decision decision) noexcept {
    (decision.allowed ? allowed_ : denied_).fetch_add(1, std::memory_order_relaxed);
    return decision;
  }

 private:
  std::atomic<std::uint64_t> allowed_{0};
  std::atomic<std::uint64_t> denied_{0};
};

}  // namespace keel::ratelimit
