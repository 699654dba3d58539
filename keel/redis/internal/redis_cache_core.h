// RedisCacheCore: the untyped half of RedisCache (not part of the public API), so that hiredis
// and the Redis commands stay out of the template. Keys here are the codec's output, before the
// prefix; values are encoded bytes. Each method runs one round trip and never throws for a Redis
// failure unless its comment says so: failures are counted and logged (paced by FailureLog).
//
// Thread safety: all members are safe to call from any number of threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/cache/cache.h"
#include "keel/core/clock.h"
#include "keel/redis/connection_options.h"
#include "keel/redis/internal/connection_pool.h"
#include "keel/redis/internal/failure_log.h"
#include "keel/redis/redis_cache_options.h"

namespace keel::redis::internal {

// A PUBLISH sent in the same round trip as a write.
struct Publication {
  std::string_view channel;
  std::string_view message;
};

class RedisCacheCore {
 public:
  // Throws std::invalid_argument for invalid options. Does not connect.
  RedisCacheCore(RedisCacheOptions options, const Clock& clock);

  // nullopt on a miss or a failure (a read error). The caller counts the lookup once it has
  // decoded the value (record_lookup).
  std::optional<std::string> get(std::string_view key);
  // One MGET; all nullopt on a failure (one read error).
  std::vector<std::optional<std::string>> get_many(std::span<const std::string> keys);
  // SET ... PX; false on a failure (a write error). Counts the put. REQUIRES: ttl > 0 if set.
  bool put(std::string_view key, std::string_view value, std::optional<Duration> ttl,
           std::optional<Publication> publication = std::nullopt);
  // One pipeline of SETs; false on a failure (one write error).
  bool put_many(std::span<const std::pair<std::string, std::string>> entries,
                std::optional<Duration> ttl);
  // DEL: whether the key was there; nullopt on a failure (a write error).
  std::optional<bool> erase(std::string_view key,
                            std::optional<Publication> publication = std::nullopt);
  // PUBLISH alone; false on a failure (a write error).
  bool publish(Publication publication);
  // SCAN over the prefix. size() throws BackendError on a failure (counted as a read error):
  // there is no honest number to return. clear() counts and logs.
  std::size_t size();
  void clear();

  // Throws std::invalid_argument for a ttl <= 0.
  static void require_ttl(const std::optional<Duration>& ttl);
  void record_lookup(bool hit) noexcept;
  // A value that did not decode: a read error, logged with `what` (the lookup is a miss).
  void record_decode_error(std::string_view redis_key, std::string_view what);

  std::string redis_key(std::string_view key) const;
  cache::CacheStats stats() const noexcept;
  RedisCacheMetrics metrics() const noexcept;
  const RedisCacheOptions& options() const noexcept { return options_; }

 private:
  void failed(std::atomic<std::uint64_t>& counter, std::string_view operation,
              std::string_view what);
  std::string ttl_argument(const std::optional<Duration>& ttl) const;  // "" for none
  template <class Visit>
  void scan(Visit visit);  // visit(keys) for each SCAN batch; throws BackendError

  const RedisCacheOptions options_;
  ConnectionPool pool_;
  FailureLog failure_log_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, puts_{0};
  std::atomic<std::uint64_t> read_errors_{0}, write_errors_{0};
};

}  // namespace keel::redis::internal
