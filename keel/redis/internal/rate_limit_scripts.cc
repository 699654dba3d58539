#include "keel/redis/internal/rate_limit_scripts.h"

#include <string>

namespace keel::redis::internal {
namespace {

constexpr std::string_view kPrelude = R"lua(
-- Times are integer microseconds since the Unix epoch. ARGV[1] is the caller's time, or empty
-- for the server's clock (TIME, replicated as effects since Redis 5).
local function now_us()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- floor(a / b) for integers, exact even where the double quotient rounds up.
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 end
  return q
end

-- Numbers as Redis arguments: '%.17g' round-trips every double (Lua's tostring keeps 14 digits).
local function num(x) return string.format('%.17g', x) end

-- A key lives as long as its state matters: `us` rounded up to whole milliseconds, at least one.
local function ttl_ms(us) return num(math.max(1, math.ceil(us / 1000))) end

-- Every script's arguments: ARGV[1] the time (above), ARGV[2] a length in us (the interval per
-- permit, or the window), ARGV[3] an amount (the capacity, or the limit), ARGV[4] the permits.
local now = now_us()
local length, amount, permits = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
)lua";

// Token bucket, GCRA and leaky bucket admit exactly the same requests (see gcra.h; a leaky
// bucket's "queue empty" time is GCRA's theoretical arrival time), so one script serves all three.
constexpr std::string_view kBucket = R"lua(
-- Token bucket, GCRA and leaky bucket: one algorithm, three ways to store it. The state is the
-- empty time z, when the bucket held (or will hold) no tokens; KEYS[1] holds z + shift, where
-- shift is 0 (token bucket: z) or the span C*I (GCRA: the theoretical arrival time; leaky
-- bucket: the time its queue is empty). A missing key is a full bucket.
-- ARGV[5]: '1' to store z + C*I.
local interval, capacity = length, amount
local span = capacity * interval
local shift = 0
if ARGV[5] == '1' then shift = span end

local z = now - span
local stored = redis.call('GET', KEYS[1])
if stored then z = math.max(tonumber(stored) - shift, z) end

local allowed, retry = 0, 0
if permits > capacity then
  retry = -1
elseif now - z >= permits * interval then
  allowed = 1
  z = z + permits * interval
  redis.call('SET', KEYS[1], num(z + shift), 'PX', ttl_ms(z + span - now))
else
  retry = math.max(1, math.ceil(z + permits * interval - now))
end
local remaining = math.min(capacity, math.max(0, math.floor((now - z) / interval)))
return {allowed, remaining, retry, math.max(0, math.ceil(z + span - now))}
)lua";

constexpr std::string_view kFixedWindow = R"lua(
-- Fixed window: KEYS[1] is a hash {w = window index, c = permits taken in it}.
local window, limit = length, amount
local index = floor_div(now, window)
local window_end = (index + 1) * window

local state = redis.call('HMGET', KEYS[1], 'w', 'c')
local count = 0
if tonumber(state[1]) == index then count = tonumber(state[2]) end

local allowed, retry = 0, 0
if permits > limit then
  retry = -1
elseif count + permits <= limit then
  allowed = 1
  count = count + permits
  redis.call('HSET', KEYS[1], 'w', num(index), 'c', num(count))
  redis.call('PEXPIRE', KEYS[1], ttl_ms(window_end - now))
else
  retry = window_end - now
end
local reset = 0
if count > 0 then reset = window_end - now end
return {allowed, limit - count, retry, reset}
)lua";

constexpr std::string_view kSlidingWindowLog = R"lua(
-- Sliding window log: KEYS[1] is a sorted set of accepted requests, member "<t>:<permits>" with
-- score t (requests at the same t share one member), KEYS[2] the sum of their permits. An entry
-- counts while t > now - w. At most L entries, since each holds at least one permit.
local window, limit = length, amount
local log, total = KEYS[1], KEYS[2]

local function permits_of(member) return tonumber(string.match(member, ':(%d+)$')) end
local function sum_of(members)
  local sum = 0
  for _, member in ipairs(members) do sum = sum + permits_of(member) end
  return sum
end

local horizon = num(now - window)
local sum = tonumber(redis.call('GET', total))
if sum == nil then sum = sum_of(redis.call('ZRANGE', log, 0, -1)) end  -- lost: recount
local expired = redis.call('ZRANGEBYSCORE', log, '-inf', horizon)
if #expired > 0 then
  sum = sum - sum_of(expired)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', horizon)
end

local allowed, retry = 0, 0
if permits > limit then
  retry = -1
elseif sum + permits <= limit then
  allowed = 1
  sum = sum + permits
  local merged = permits
  local same = redis.call('ZRANGEBYSCORE', log, num(now), num(now))
  if #same > 0 then
    merged = merged + permits_of(same[1])
    redis.call('ZREM', log, same[1])
  end
  redis.call('ZADD', log, num(now), num(now) .. ':' .. num(merged))
else
  -- the oldest entries leave first: wait for the one that frees the last permit needed
  local needed, freed, first, batch = sum + permits - limit, 0, 0, 32
  while retry == 0 do
    local entries = redis.call('ZRANGE', log, first, first + batch - 1, 'WITHSCORES')
    if #entries == 0 then retry = window; break end  -- only if the sum disagrees with the log
    for i = 1, #entries, 2 do
      freed = freed + permits_of(entries[i])
      if freed >= needed then
        retry = tonumber(entries[i + 1]) + window - now
        break
      end
    end
    first = first + batch
  end
end

local reset = 0
local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
if #newest > 0 then reset = tonumber(newest[2]) + window - now end
if allowed == 1 or #expired > 0 then
  if sum > 0 then
    redis.call('SET', total, num(sum), 'PX', ttl_ms(reset))
    redis.call('PEXPIRE', log, ttl_ms(reset))
  else
    redis.call('DEL', total, log)
  end
end
return {allowed, limit - sum, retry, reset}
)lua";

constexpr std::string_view kSlidingWindowCounter = R"lua(
-- Sliding window counter: KEYS[1] is a hash {w = window index, c = its count, p = the count of
-- window w - 1}. The estimate previous * (w - elapsed) / w + current is compared multiplied by
-- w, in integers, so that it is exact.
local window, limit = length, amount
local index = floor_div(now, window)
local start = index * window

local state = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local stored_index = tonumber(state[1])
local current, previous = 0, 0
if stored_index == index then
  current, previous = tonumber(state[2]), tonumber(state[3])
elseif stored_index == index - 1 then
  previous = tonumber(state[2])
end
local weighted = previous * (window - (now - start))  -- previous' share, times w

local allowed, retry = 0, 0
if permits > limit then
  retry = -1
elseif weighted + (current + permits) * window <= limit * window then
  allowed = 1
  current = current + permits
  redis.call('HSET', KEYS[1], 'w', num(index), 'c', num(current), 'p', num(previous))
  redis.call('PEXPIRE', KEYS[1], ttl_ms(start + 2 * window - now))
elseif current + permits <= limit then
  -- passes once enough of the previous window has slid out of this one
  retry = start + window - floor_div((limit - current - permits) * window, previous) - now
else
  -- passes in the next window, once enough of this one (its previous) has slid out
  retry = start + 2 * window - math.min(window, floor_div((limit - permits) * window, current)) - now
end
local remaining = math.max(0, floor_div(limit * window - weighted - current * window, window))
local reset = 0
if current > 0 then
  reset = start + 2 * window - now
elseif previous > 0 then
  reset = start + window - now
end
return {allowed, remaining, retry, reset}
)lua";

}  // namespace

std::string_view rate_limit_script_source(RateLimitScript script) {
  static const std::array<std::string, kRateLimitScriptCount> sources = [] {
    auto with_prelude = [](std::string_view body) {
      std::string source(kPrelude);
      source += body;
      return source;
    };
    return std::array<std::string, kRateLimitScriptCount>{
        with_prelude(kBucket), with_prelude(kFixedWindow), with_prelude(kSlidingWindowLog),
        with_prelude(kSlidingWindowCounter)};
  }();
  return sources.at(static_cast<std::size_t>(script));
}

}  // namespace keel::redis::internal
