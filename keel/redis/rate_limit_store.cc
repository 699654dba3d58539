#include "keel/redis/rate_limit_store.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "keel/core/errors.h"
#include "keel/core/internal/log.h"
#include "keel/redis/internal/connection_pool.h"
#include "keel/redis/internal/failure_log.h"
#include "keel/redis/internal/rate_limit_scripts.h"

namespace keel::redis {
namespace {

using internal::RateLimitScript;
using ratelimit::Algorithm;
using std::chrono::microseconds;

// How an algorithm is kept in Redis: the suffix of its key and the script that decides.
struct Scheme {
  std::string_view suffix;
  RateLimitScript script;
};

Scheme scheme_of(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::token_bucket:
      return {"tb", RateLimitScript::bucket};
    case Algorithm::gcra:
      return {"gcra", RateLimitScript::bucket};
    case Algorithm::leaky_bucket:
      return {"lb", RateLimitScript::bucket};
    case Algorithm::fixed_window:
      return {"fw", RateLimitScript::fixed_window};
    case Algorithm::sliding_window_log:
      return {"swl", RateLimitScript::sliding_window_log};
    case Algorithm::sliding_window_counter:
      return {"swc", RateLimitScript::sliding_window_counter};
  }
  throw std::invalid_argument("RateLimitStore: unknown algorithm");
}

bool is_window_algorithm(Algorithm algorithm) {
  return scheme_of(algorithm).script != RateLimitScript::bucket;
}

void validate_request(std::string_view key, const ratelimit::Limit& limit, std::int64_t permits) {
  limit.validate();
  if (key.empty()) throw std::invalid_argument("RateLimitStore: key must not be empty");
  if (permits < 1) {
    throw std::invalid_argument(
        fmt::format("RateLimitStore: permits must be > 0, got {}", permits));
  }
  if (is_window_algorithm(limit.algorithm) && limit.window % microseconds(1) != Duration::zero()) {
    throw std::invalid_argument(fmt::format(
        "RateLimitStore: window must be a whole number of microseconds, got {}", limit.window));
  }
}

void validate(const RateLimitStoreOptions& options) {
  if (options.key_prefix.find_first_of("{}") != std::string::npos) {
    throw std::invalid_argument(fmt::format(
        "RateLimitStore: key_prefix must not contain '{{' or '}}', got '{}'", options.key_prefix));
  }
  if (options.failure_retry_after <= Duration::zero()) {
    throw std::invalid_argument(fmt::format(
        "RateLimitStore: failure_retry_after must be > 0, got {}", options.failure_retry_after));
  }
}

// One EVALSHA: which script, its keys and its arguments after the time.
struct Call {
  RateLimitScript script;
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

// What every script returns: allowed, remaining, retry_after_us (-1: never), reset_after_us.
using Outcome = std::array<long long, 4>;

Outcome parse_outcome(const redisReply& reply) {
  Outcome outcome;
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != outcome.size()) {
    throw BackendError("redis", "rate-limit script returned an unexpected reply");
  }
  for (std::size_t i = 0; i < outcome.size(); ++i) {
    const redisReply* element = reply.element[i];
    if (element->type != REDIS_REPLY_INTEGER) {
      throw BackendError("redis", "rate-limit script returned a non-integer");
    }
    outcome[i] = element->integer;
  }
  return outcome;
}

ratelimit::Decision to_decision(const ratelimit::Limit& limit, const Outcome& outcome) {
  const auto [allowed, remaining, retry_us, reset_us] = outcome;
  return ratelimit::Decision{
      .allowed = allowed == 1,
      .limit = limit.amount,
      .remaining = remaining,
      .retry_after = retry_us < 0 ? Duration::max() : Duration(microseconds(retry_us)),
      .reset_after = microseconds(reset_us)};
}

// A script's SHA1, known from its first SCRIPT LOAD (loading it again gives the same).
class LoadedScript {
 public:
  template <class Load>
  const std::string& sha(Load load) {
    if (ready_.load(std::memory_order_acquire)) return sha_;
    std::lock_guard lock(mutex_);
    if (!ready_.load(std::memory_order_relaxed)) {
      sha_ = load();
      ready_.store(true, std::memory_order_release);
    }
    return sha_;
  }

 private:
  std::mutex mutex_;
  std::string sha_;  // written once, before ready_
  std::atomic<bool> ready_{false};
};

}  // namespace

struct RateLimitStore::Impl {
  using Reply = internal::Reply;

  Impl(RateLimitStoreOptions o, const Clock& c)
      : options(std::move(o)), clock(c), pool(options.connection) {}

  Call make_call(std::string_view key, const ratelimit::Limit& limit, std::int64_t permits) const;
  Outcome evaluate(const Call& call);
  Reply run(const Call& call, std::string_view sha);
  std::string load(RateLimitScript script);
  ratelimit::Decision fail(const ratelimit::Limit& limit, const BackendError& error);
  void warn(const BackendError& error, bool open);
  std::string redis_key(std::string_view key, Algorithm algorithm) const;

  const RateLimitStoreOptions options;
  const Clock& clock;
  internal::ConnectionPool pool;
  std::array<LoadedScript, internal::kRateLimitScriptCount> scripts;
  std::atomic<std::uint64_t> allowed{0};
  std::atomic<std::uint64_t> denied{0};
  std::atomic<std::uint64_t> reply_errors{0};  // failures the pool did not see (error replies)
  std::atomic<std::uint64_t> failed_open{0};
  std::atomic<std::uint64_t> failed_closed{0};
  std::atomic<std::uint64_t> script_loads{0};
  internal::FailureLog failure_log{clock};
};

std::string RateLimitStore::Impl::redis_key(std::string_view key, Algorithm algorithm) const {
  std::string name = options.key_prefix;
  name += '{';
  for (const char c : key) {
    switch (c) {
      case '{':
        name += "%7B";
        break;
      case '}':
        name += "%7D";
        break;
      case '%':
        name += "%25";
        break;
      default:
        name += c;
    }
  }
  name += "}:";
  name += scheme_of(algorithm).suffix;
  return name;
}

Call RateLimitStore::Impl::make_call(std::string_view key, const ratelimit::Limit& limit,
                                     std::int64_t permits) const {
  const Scheme scheme = scheme_of(limit.algorithm);
  std::string now;  // empty: the script reads the server's TIME
  if (options.time_source == TimeSource::clock) {
    now = fmt::format(
        "{}",
        std::chrono::duration_cast<microseconds>(clock.wall_now().time_since_epoch()).count());
  }
  const bool bucket = scheme.script == RateLimitScript::bucket;
  std::string length =  // us per permit, or per window
      bucket ? fmt::format("{}", 1e6 / limit.rate_per_second)
             : fmt::format("{}", std::chrono::duration_cast<microseconds>(limit.window).count());
  Call call{scheme.script,
            {redis_key(key, limit.algorithm)},
            {std::move(now), std::move(length), fmt::format("{}", limit.amount),
             fmt::format("{}", permits)}};
  if (bucket) call.args.emplace_back(limit.algorithm == Algorithm::token_bucket ? "0" : "1");
  if (limit.algorithm == Algorithm::sliding_window_log) {
    call.keys.push_back(call.keys.front() + ":sum");
  }
  return call;
}

std::string RateLimitStore::Impl::load(RateLimitScript script) {
  const std::array<std::string_view, 3> args{"SCRIPT", "LOAD",
                                             internal::rate_limit_script_source(script)};
  const Reply reply = pool.command(args);
  script_loads.fetch_add(1, std::memory_order_relaxed);
  if (reply->type != REDIS_REPLY_STRING) {
    reply_errors.fetch_add(1, std::memory_order_relaxed);
    throw BackendError("redis",
                       fmt::format("SCRIPT LOAD failed: {}", internal::reply_text(*reply)));
  }
  return std::string(internal::reply_text(*reply));
}

RateLimitStore::Impl::Reply RateLimitStore::Impl::run(const Call& call, std::string_view sha) {
  const std::string key_count = std::to_string(call.keys.size());
  std::vector<std::string_view> argv{"EVALSHA", sha, key_count};
  argv.insert(argv.end(), call.keys.begin(), call.keys.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  return pool.command(argv);
}

Outcome RateLimitStore::Impl::evaluate(const Call& call) {
  LoadedScript& script = scripts[static_cast<std::size_t>(call.script)];
  const std::string& sha = script.sha([&] { return load(call.script); });
  Reply reply = run(call, sha);
  if (internal::is_error(*reply) && internal::reply_text(*reply).starts_with("NOSCRIPT")) {
    load(call.script);  // the server lost its scripts (SCRIPT FLUSH, restart, failover)
    reply = run(call, sha);
  }
  if (internal::is_error(*reply)) {
    reply_errors.fetch_add(1, std::memory_order_relaxed);
    throw BackendError("redis", std::string(internal::reply_text(*reply)));
  }
  try {
    return parse_outcome(*reply);
  } catch (const BackendError&) {
    reply_errors.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

ratelimit::Decision RateLimitStore::Impl::fail(const ratelimit::Limit& limit,
                                               const BackendError& error) {
  const bool open = options.on_failure == FailureMode::fail_open;
  warn(error, open);
  if (open) {
    failed_open.fetch_add(1, std::memory_order_relaxed);
    return ratelimit::Decision{.allowed = true, .limit = limit.amount};
  }
  failed_closed.fetch_add(1, std::memory_order_relaxed);
  return ratelimit::Decision{.allowed = false,
                             .limit = limit.amount,
                             .retry_after = options.failure_retry_after,
                             .reset_after = options.failure_retry_after};
}

void RateLimitStore::Impl::warn(const BackendError& error, bool open) {
  if (const std::uint64_t failures = failure_log.record()) {
    keel::internal::logger().warn("RateLimitStore: {} Redis failure(s), failing {}; last: {}",
                                  failures, open ? "open" : "closed", error.what());
  }
}

RateLimitStore::RateLimitStore(RateLimitStoreOptions options, const Clock& clock) {
  validate(options);
  impl_ = std::make_unique<Impl>(std::move(options), clock);
}

RateLimitStore::~RateLimitStore() = default;

ratelimit::Decision RateLimitStore::try_acquire(std::string_view key, const ratelimit::Limit& limit,
                                                std::int64_t permits) {
  validate_request(key, limit, permits);
  const Call call = impl_->make_call(key, limit, permits);
  Outcome outcome;
  try {
    outcome = impl_->evaluate(call);
  } catch (const BackendError& error) {
    return impl_->fail(limit, error);
  }
  const ratelimit::Decision decision = to_decision(limit, outcome);
  (decision.allowed ? impl_->allowed : impl_->denied).fetch_add(1, std::memory_order_relaxed);
  return decision;
}

RateLimitStoreMetrics RateLimitStore::metrics() const noexcept {
  const Impl& impl = *impl_;
  auto read = [](const std::atomic<std::uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  };
  return {.allowed = read(impl.allowed),
          .denied = read(impl.denied),
          .errors = impl.pool.failures() + read(impl.reply_errors),
          .failed_open = read(impl.failed_open),
          .failed_closed = read(impl.failed_closed),
          .script_loads = read(impl.script_loads)};
}

Subscription RateLimitStore::register_metrics(MetricsRegistry& registry,
                                              std::string_view name) const {
  const std::string limiter(name);
  std::vector<Subscription> parts;
  auto add = [&](std::string_view metric, std::string_view help, Labels labels,
                 std::uint64_t RateLimitStoreMetrics::*field) {
    labels.emplace("limiter", limiter);
    parts.push_back(registry.counter_fn(
        metric, help, labels, [this, field] { return static_cast<double>(metrics().*field); }));
  };
  constexpr std::string_view kDecisions = "keel_ratelimit_decisions_total";
  constexpr std::string_view kDecisionsHelp = "Rate-limit decisions by outcome";
  add(kDecisions, kDecisionsHelp, {{"outcome", "allowed"}}, &RateLimitStoreMetrics::allowed);
  add(kDecisions, kDecisionsHelp, {{"outcome", "denied"}}, &RateLimitStoreMetrics::denied);
  constexpr std::string_view kFailures = "keel_ratelimit_store_failures_total";
  constexpr std::string_view kFailuresHelp =
      "Rate-limit decisions made without the store, by failure mode";
  add(kFailures, kFailuresHelp, {{"mode", "fail_open"}}, &RateLimitStoreMetrics::failed_open);
  add(kFailures, kFailuresHelp, {{"mode", "fail_closed"}}, &RateLimitStoreMetrics::failed_closed);
  add("keel_redis_errors_total", "Failed exchanges with Redis, retried or not", {},
      &RateLimitStoreMetrics::errors);
  add("keel_redis_script_loads_total", "Lua scripts loaded into Redis (SCRIPT LOAD)", {},
      &RateLimitStoreMetrics::script_loads);
  return Subscription::all(std::move(parts));
}

std::string RateLimitStore::redis_key(std::string_view key, Algorithm algorithm) const {
  return impl_->redis_key(key, algorithm);
}

}  // namespace keel::redis
