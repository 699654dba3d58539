// keel::ratelimit::Store: the port through which many processes share rate-limit state.
//
// A Store makes one atomic decision per call for a (key, Limit) pair. MemoryStore keeps the state
// in this process (a KeyedRateLimiter per algorithm); keel::redis::RateLimitStore keeps it in
// Redis so that every node of a service sees the same counts. StoreRateLimiter turns one key of
// a Store back into a RateLimiter.
//
// The state of a key belongs to its algorithm: calling with the same key and another algorithm
// uses separate state. Changing the parameters of a Limit for a key that has state continues
// from that state (MemoryStore starts it afresh).
//
// Thread safety: implementations are safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/ratelimit/keyed_rate_limiter.h"
#include "keel/ratelimit/limit.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

class Store {
 public:
  virtual ~Store() = default;
  // Throws std::invalid_argument for an invalid limit, empty key or permits < 1. Backends that
  // cannot reach their engine decide by their failure mode (see the backend).
  virtual Decision try_acquire(std::string_view key, const Limit& limit,
                               std::int64_t permits = 1) = 0;
};

// In-process Store: state per (algorithm, key), bounded like a KeyedRateLimiter.
class MemoryStore final : public Store {
 public:
  explicit MemoryStore(KeyedOptions options = {}, const Clock& clock = default_clock());
  ~MemoryStore() override;
  Decision try_acquire(std::string_view key, const Limit& limit, std::int64_t permits = 1) override;
  std::size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One key of a Store seen as a RateLimiter. is_full() is not known remotely and returns false.
class StoreRateLimiter final : public RateLimiter {
 public:
  StoreRateLimiter(Store& store, std::string key, Limit limit);
  Decision try_acquire(std::int64_t permits = 1) override;
  bool is_full() const override { return false; }

 private:
  Store& store_;
  std::string key_;
  Limit limit_;
};

}  // namespace keel::ratelimit
