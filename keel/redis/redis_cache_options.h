// The options and counters of keel::redis::RedisCache (see redis_cache.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "keel/core/clock.h"
#include "keel/redis/connection_options.h"

namespace keel::redis {

struct RedisCacheOptions {
  ConnectionOptions connection{};
  // Prepended to every key: one prefix per cache (and per schema version of its values).
  // size() and clear() work on the keys under it. Default: "keel:cache:". REQUIRES: not empty.
  std::string key_prefix = "keel:cache:";
  // ttl of a put without one, sent as SET ... PX in whole milliseconds (rounded up). It also
  // bounds how long a value whose invalidation failed (Redis down during erase()) can be served.
  // Default: none (entries live until erased or evicted by Redis' maxmemory policy).
  // REQUIRES: > 0 when set.
  std::optional<Duration> default_ttl = std::nullopt;
};

// Counters since construction. Exact under concurrency.
struct RedisCacheMetrics {
  // Lookups answered as a miss because Redis failed (one per get() or get_many() call), or
  // because a value did not decode (one per value).
  std::uint64_t read_errors = 0;
  // put(), put_many(), erase(), clear() and invalidation broadcasts that did not reach Redis.
  // A failed erase leaves the old value in Redis until its ttl.
  std::uint64_t write_errors = 0;

  std::uint64_t errors() const noexcept { return read_errors + write_errors; }
};

}  // namespace keel::redis
