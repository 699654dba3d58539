#include "case_studies/url_shortener/redis_counter_source.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <array>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "keel/core/errors.h"
#include "keel/core/internal/log.h"
#include "keel/redis/internal/connection_pool.h"
#include "keel/redis/internal/failure_log.h"

namespace keel::shortener {

namespace {

// Hands out `count` values of the current epoch: returns the first, or -1 - end when the epoch
// cannot give them (used up, or missing: end = 0). One hash holds both fields, so that Redis
// never keeps one without the other (an eviction or a loss takes both).
constexpr std::string_view kReserve = R"lua(
local state = redis.call('HMGET', KEYS[1], 'next', 'end')
local next, last = tonumber(state[1]), tonumber(state[2])
local count = tonumber(ARGV[1])
if not next or not last or next + count > last then return -1 - (last or 0) end
redis.call('HINCRBY', KEYS[1], 'next', count)
return next
)lua";

// Installs the epoch [ARGV[1], ARGV[2]) unless another server replaced the one whose end the
// caller saw (ARGV[3]); 1 when installed.
constexpr std::string_view kInstall = R"lua(
local last = tonumber(redis.call('HGET', KEYS[1], 'end') or '0')
if last ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'end', ARGV[2])
return 1
)lua";

// Rounds in which other servers may replace the epoch before this one gives up on Redis.
constexpr int kAttempts = 4;

void validate(const RedisCounterOptions& options) {
  if (options.key.empty()) throw std::invalid_argument("RedisCounterSource: key must not be empty");
  if (options.epoch == 0 ||
      options.epoch > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw std::invalid_argument(
        fmt::format("RedisCounterSource: epoch must be in [1, 2^63), got {}", options.epoch));
  }
}

}  // namespace

struct RedisCounterSource::Impl {
  Impl(RedisCounterOptions o, CounterSource& d, const Clock& clock)
      : options((validate(o), std::move(o))),
        durable(d),
        pool(options.connection),
        failure_log(clock) {}

  // Runs a script on the counter's key; its integer reply. Throws BackendError("redis", ...).
  std::int64_t eval(std::string_view script, std::initializer_list<std::uint64_t> numbers) {
    std::vector<std::string> args;
    for (const std::uint64_t n : numbers) args.push_back(std::to_string(n));
    std::vector<std::string_view> argv{"EVAL", script, "1", options.key};
    argv.insert(argv.end(), args.begin(), args.end());
    const redis::internal::Reply reply = pool.command(argv);
    if (reply->type != REDIS_REPLY_INTEGER) {
      throw BackendError(
          "redis", fmt::format("counter script failed: {}", redis::internal::reply_text(*reply)));
    }
    return reply->integer;
  }

  std::uint64_t from_redis(std::uint64_t count) {
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      const std::int64_t first = eval(kReserve, {count});
      if (first >= 0) {
        blocks.fetch_add(1, std::memory_order_relaxed);
        return static_cast<std::uint64_t>(first);
      }
      const auto seen_end = static_cast<std::uint64_t>(-1 - first);
      const std::uint64_t start = durable.reserve_counter(options.epoch);
      epochs.fetch_add(1, std::memory_order_relaxed);
      eval(kInstall, {start, start + options.epoch, seen_end});  // 0: another server's won
    }
    throw BackendError("redis", fmt::format("no counter epoch after {} attempts: other servers "
                                            "kept replacing it",
                                            kAttempts));
  }

  const RedisCounterOptions options;
  CounterSource& durable;
  redis::internal::ConnectionPool pool;
  redis::internal::FailureLog failure_log;
  std::atomic<std::uint64_t> blocks{0}, epochs{0}, fallbacks{0};
};

RedisCounterSource::RedisCounterSource(RedisCounterOptions options, CounterSource& durable,
                                       const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), durable, clock)) {}

RedisCounterSource::~RedisCounterSource() = default;

std::uint64_t RedisCounterSource::reserve_counter(std::uint64_t count) {
  require_counter_count(count);
  if (count > impl_->options.epoch) {
    throw std::invalid_argument(
        fmt::format("RedisCounterSource: a block of {} is larger than the epoch ({})", count,
                    impl_->options.epoch));
  }
  try {
    return impl_->from_redis(count);
  } catch (const BackendError& e) {
    if (e.backend() != "redis") throw;  // the durable source failed: nothing else to ask
    impl_->fallbacks.fetch_add(1, std::memory_order_relaxed);
    if (const std::uint64_t failures = impl_->failure_log.record(); failures > 0) {
      keel::internal::logger().warn(
          "shortener: {} counter block(s) taken from the database because Redis failed: {}",
          failures, e.what());
    }
    return impl_->durable.reserve_counter(count);
  }
}

RedisCounterMetrics RedisCounterSource::metrics() const noexcept {
  return {.blocks = impl_->blocks.load(std::memory_order_relaxed),
          .epochs = impl_->epochs.load(std::memory_order_relaxed),
          .fallbacks = impl_->fallbacks.load(std::memory_order_relaxed)};
}

}  // namespace keel::shortener
