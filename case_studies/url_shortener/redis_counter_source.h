// RedisCounterSource: counter blocks from Redis, for many servers (docs/url_shortener.md,
// "Many nodes").
//
//   PostgresLinkStore store(conninfo);
//   RedisCounterSource counters({.connection = {.host = "10.0.0.5"}}, store);
//   Shortener shortener(store, {.code_key = secret, .counter_source = &counters});
//
// A block of `count` values is one atomic script on Redis (INCRBY on the counter key, checked
// against the end of the current epoch): one short round trip, no database write. Redis keeps
// the counter inside an *epoch*, a large range reserved from a durable CounterSource (the link
// store) in one transaction. When the epoch is used up, or Redis lost it (restarted without
// persistence, flushed, failed over to a replica that had not seen the last INCRBY), the next
// server to ask reserves a new epoch from the durable source and installs it; servers that
// raced it waste theirs. So a code is never handed out twice, whatever happens to Redis, and
// losing Redis costs at most one epoch of the code space (62^7 / 10^6 ≈ 3.5 million epochs).
//
// While Redis fails (unreachable, timeout, error reply), blocks come straight from the durable
// source, so creating links does not depend on Redis; each failure is counted (metrics()) and
// logged, at most one line per 10 s.
//
// Keys (one hash slot, for Redis Cluster): "{<key>}:next" and "{<key>}:end".
//
// Thread safety: safe to call from any number of threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "case_studies/url_shortener/link_store.h"
#include "keel/core/clock.h"
#include "keel/redis/connection_options.h"

namespace keel::shortener {

struct RedisCounterOptions {
  redis::ConnectionOptions connection{};
  // Names the counter: the same on every server of one service. Default: "keel:shortener:counter".
  // REQUIRES: not empty.
  std::string key = "keel:shortener:counter";
  // Values reserved from the durable source per epoch. Default: 1,000,000 (one database
  // transaction per million codes). REQUIRES: > 0 and >= every block asked for.
  std::uint64_t epoch = 1'000'000;
};

struct RedisCounterMetrics {
  std::uint64_t blocks = 0;     // blocks served by Redis
  std::uint64_t epochs = 0;     // epochs reserved from the durable source by this process
  std::uint64_t fallbacks = 0;  // blocks taken from the durable source because Redis failed
};

class RedisCounterSource final : public CounterSource {
 public:
  // `durable` (the link store) gives the epochs and the blocks while Redis fails; it must outlive
  // this object, as must `clock` (it paces the warnings). Does not connect. Throws
  // std::invalid_argument for invalid options.
  RedisCounterSource(RedisCounterOptions options, CounterSource& durable,
                     const Clock& clock = default_clock());
  ~RedisCounterSource() override;
  RedisCounterSource(const RedisCounterSource&) = delete;
  RedisCounterSource& operator=(const RedisCounterSource&) = delete;

  // Throws std::invalid_argument for a count of 0 or above the epoch; the durable source's
  // error when it fails as well.
  std::uint64_t reserve_counter(std::uint64_t count) override;

  RedisCounterMetrics metrics() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::shortener
