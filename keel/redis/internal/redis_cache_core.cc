#include "keel/redis/internal/redis_cache_core.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <unordered_set>

#include "keel/core/errors.h"
#include "keel/core/internal/log.h"

namespace keel::redis::internal {
namespace {

constexpr std::string_view kScanBatch = "1000";

void validate(const RedisCacheOptions& options) {
  if (options.key_prefix.empty()) {
    throw std::invalid_argument(
        "RedisCache: key_prefix must not be empty (size() and clear() work on the keys under it)");
  }
  if (options.default_ttl && *options.default_ttl <= Duration::zero()) {
    throw std::invalid_argument(
        fmt::format("RedisCache: default_ttl must be > 0, got {}", *options.default_ttl));
  }
}

// A reply of the wrong type (an error reply included) as a failure naming the command.
BackendError unexpected(std::string_view command, const redisReply& reply) {
  if (is_error(reply))
    return BackendError("redis", fmt::format("{}: {}", command, reply_text(reply)));
  return BackendError("redis", fmt::format("{}: unexpected reply of type {}", command, reply.type));
}

void expect_type(std::string_view command, const redisReply& reply, int type) {
  if (reply.type != type) throw unexpected(command, reply);
}

// `prefix` as a SCAN MATCH pattern of the keys under it.
std::string glob_of_prefix(std::string_view prefix) {
  std::string pattern;
  for (const char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '*';
  return pattern;
}

std::uint64_t read(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

}  // namespace

RedisCacheCore::RedisCacheCore(RedisCacheOptions options, const Clock& clock)
    : options_((validate(options), std::move(options))),
      pool_(options_.connection),
      failure_log_(clock) {}

void RedisCacheCore::require_ttl(const std::optional<Duration>& ttl) {
  if (ttl && *ttl <= Duration::zero()) {
    throw std::invalid_argument(fmt::format("RedisCache: ttl must be > 0, got {}", *ttl));
  }
}

std::string RedisCacheCore::redis_key(std::string_view key) const {
  std::string name;
  name.reserve(options_.key_prefix.size() + key.size());
  name += options_.key_prefix;
  name += key;
  return name;
}

std::string RedisCacheCore::ttl_argument(const std::optional<Duration>& ttl) const {
  const std::optional<Duration> effective = ttl ? ttl : options_.default_ttl;
  if (!effective) return {};
  // Rounded up: a ttl under a millisecond must not become PX 0 (an error) or no expiry.
  return std::to_string(std::chrono::ceil<std::chrono::milliseconds>(*effective).count());
}

void RedisCacheCore::failed(std::atomic<std::uint64_t>& counter, std::string_view operation,
                            std::string_view what) {
  counter.fetch_add(1, std::memory_order_relaxed);
  if (const std::uint64_t failures = failure_log_.record()) {
    keel::internal::logger().warn(
        "RedisCache '{}': {} failure(s) (reads served as misses, writes not applied); last: {}: "
        "{}",
        options_.key_prefix, failures, operation, what);
  }
}

void RedisCacheCore::record_lookup(bool hit) noexcept {
  (hit ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
}

void RedisCacheCore::record_decode_error(std::string_view key, std::string_view what) {
  failed(read_errors_, fmt::format("decoding the value of {}", key), what);
}

std::optional<std::string> RedisCacheCore::get(std::string_view key) {
  const std::string name = redis_key(key);
  try {
    const std::array<std::string_view, 2> args{"GET", name};
    const Reply reply = pool_.command(args);
    if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
    expect_type("GET", *reply, REDIS_REPLY_STRING);
    return std::string(reply_text(*reply));
  } catch (const BackendError& e) {
    failed(read_errors_, "GET " + name, e.what());
    return std::nullopt;
  }
}

std::vector<std::optional<std::string>> RedisCacheCore::get_many(
    std::span<const std::string> keys) {
  std::vector<std::optional<std::string>> values(keys.size());
  if (keys.empty()) return values;
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const std::string& key : keys) names.push_back(redis_key(key));
  try {
    std::vector<std::string_view> args{"MGET"};
    args.insert(args.end(), names.begin(), names.end());
    const Reply reply = pool_.command(args);
    expect_type("MGET", *reply, REDIS_REPLY_ARRAY);
    if (reply->elements != keys.size()) throw unexpected("MGET", *reply);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const redisReply& element = *reply->element[i];
      if (element.type == REDIS_REPLY_STRING) values[i] = std::string(reply_text(element));
    }
  } catch (const BackendError& e) {
    failed(read_errors_, fmt::format("MGET of {} keys", keys.size()), e.what());
    std::fill(values.begin(), values.end(), std::nullopt);
  }
  return values;
}

bool RedisCacheCore::put(std::string_view key, std::string_view value, std::optional<Duration> ttl,
                         std::optional<Publication> publication) {
  puts_.fetch_add(1, std::memory_order_relaxed);
  const std::string name = redis_key(key);
  const std::string px = ttl_argument(ttl);
  std::vector<std::vector<std::string_view>> commands{{"SET", name, value}};
  if (!px.empty()) commands.front().insert(commands.front().end(), {"PX", px});
  if (publication) commands.push_back({"PUBLISH", publication->channel, publication->message});
  try {
    const std::vector<Reply> replies = pool_.pipeline(commands);
    expect_type("SET", *replies[0], REDIS_REPLY_STATUS);
    if (publication) expect_type("PUBLISH", *replies[1], REDIS_REPLY_INTEGER);
    return true;
  } catch (const BackendError& e) {
    failed(write_errors_, "SET " + name, e.what());
    return false;
  }
}

bool RedisCacheCore::put_many(std::span<const std::pair<std::string, std::string>> entries,
                              std::optional<Duration> ttl) {
  puts_.fetch_add(entries.size(), std::memory_order_relaxed);
  if (entries.empty()) return true;
  const std::string px = ttl_argument(ttl);
  std::vector<std::string> names;
  names.reserve(entries.size());
  std::vector<std::vector<std::string_view>> commands;
  commands.reserve(entries.size());
  for (const auto& [key, value] : entries) {
    names.push_back(redis_key(key));
    commands.push_back({"SET", names.back(), value});
    if (!px.empty()) commands.back().insert(commands.back().end(), {"PX", px});
  }
  try {
    for (const Reply& reply : pool_.pipeline(commands)) {
      expect_type("SET", *reply, REDIS_REPLY_STATUS);
    }
    return true;
  } catch (const BackendError& e) {
    failed(write_errors_, fmt::format("pipeline of {} SETs", entries.size()), e.what());
    return false;
  }
}

std::optional<bool> RedisCacheCore::erase(std::string_view key,
                                          std::optional<Publication> publication) {
  const std::string name = redis_key(key);
  std::vector<std::vector<std::string_view>> commands{{"DEL", name}};
  if (publication) commands.push_back({"PUBLISH", publication->channel, publication->message});
  try {
    const std::vector<Reply> replies = pool_.pipeline(commands);
    expect_type("DEL", *replies[0], REDIS_REPLY_INTEGER);
    if (publication) expect_type("PUBLISH", *replies[1], REDIS_REPLY_INTEGER);
    return replies[0]->integer > 0;
  } catch (const BackendError& e) {
    failed(write_errors_, "DEL " + name, e.what());
    return std::nullopt;
  }
}

bool RedisCacheCore::publish(Publication publication) {
  try {
    const std::array<std::string_view, 3> args{"PUBLISH", publication.channel, publication.message};
    expect_type("PUBLISH", *pool_.command(args), REDIS_REPLY_INTEGER);
    return true;
  } catch (const BackendError& e) {
    failed(write_errors_, fmt::format("PUBLISH to {}", publication.channel), e.what());
    return false;
  }
}

template <class Visit>
void RedisCacheCore::scan(Visit visit) {
  const std::string pattern = glob_of_prefix(options_.key_prefix);
  std::string cursor = "0";
  do {
    const std::array<std::string_view, 6> args{"SCAN",  cursor,  "MATCH",
                                               pattern, "COUNT", kScanBatch};
    const Reply reply = pool_.command(args);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
      throw unexpected("SCAN", *reply);
    }
    cursor = std::string(reply_text(*reply->element[0]));
    const redisReply& batch = *reply->element[1];
    std::vector<std::string_view> keys;
    keys.reserve(batch.elements);
    for (std::size_t i = 0; i < batch.elements; ++i) keys.push_back(reply_text(*batch.element[i]));
    visit(keys);
  } while (cursor != "0");
}

std::size_t RedisCacheCore::size() {
  // SCAN may return a key twice (while Redis rehashes): count each once.
  std::unordered_set<std::string> keys;
  try {
    scan([&](std::span<const std::string_view> batch) {
      for (const std::string_view key : batch) keys.emplace(key);
    });
  } catch (const BackendError& e) {
    failed(read_errors_, "SCAN", e.what());
    throw;
  }
  return keys.size();
}

void RedisCacheCore::clear() {
  try {
    scan([&](std::span<const std::string_view> batch) {
      if (batch.empty()) return;
      std::vector<std::string_view> args{"UNLINK"};
      args.insert(args.end(), batch.begin(), batch.end());
      expect_type("UNLINK", *pool_.command(args), REDIS_REPLY_INTEGER);
    });
  } catch (const BackendError& e) {
    failed(write_errors_, "clear (SCAN and UNLINK)", e.what());
  }
}

cache::CacheStats RedisCacheCore::stats() const noexcept {
  return {.hits = read(hits_), .misses = read(misses_), .puts = read(puts_)};
}

RedisCacheMetrics RedisCacheCore::metrics() const noexcept {
  return {.read_errors = read(read_errors_), .write_errors = read(write_errors_)};
}

}  // namespace keel::redis::internal
