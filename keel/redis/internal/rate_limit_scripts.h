// The Lua scripts behind RateLimitStore (not part of the public API).
//
// Each script makes one decision atomically. ARGV[1] is the time in integer microseconds since
// the Unix epoch, or empty to read the server's TIME; the other arguments follow the script's
// comment. Each returns {allowed (0|1), remaining, retry_after_us (-1: never), reset_after_us}
// and leaves its keys with a TTL of reset_after (rounded up to a millisecond).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace keel::redis::internal {

enum class RateLimitScript : std::size_t {
  bucket,                  // token bucket, GCRA and leaky bucket (KEYS: state)
  fixed_window,            // KEYS: state
  sliding_window_log,      // KEYS: log, sum
  sliding_window_counter,  // KEYS: state
};
inline constexpr std::size_t kRateLimitScriptCount = 4;

// The full source of `script` (a shared prelude, then the algorithm).
std::string_view rate_limit_script_source(RateLimitScript script);

}  // namespace keel::redis::internal
