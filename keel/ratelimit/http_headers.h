// Rendering a Decision as HTTP response headers.
//
// - `Retry-After: <seconds>` on denial, whole seconds rounded up (RFC 9110);
// - the IETF httpapi draft fields (draft-ietf-httpapi-ratelimit-headers):
//   `RateLimit-Policy: "default";q=100;w=60` and `RateLimit: "default";r=50;t=30`;
// - the widely used `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//   (seconds until the allowance is full again, rounded up; not an epoch time).
// Counts are rendered as the draft's structured-field integers allow: clamped to
// [0, 999,999,999,999,999] (RFC 8941 integers have at most 15 digits).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

struct HeaderOptions {
  // The policy name in the draft fields, rendered as a structured-field string: printable ASCII
  // without '"' and '\' (which would need escaping). Default: "default".
  std::string policy = "default";
  // The window of the quota (w=) in the policy field; nullopt leaves w= out.
  std::optional<Duration> window = std::nullopt;
  bool draft_fields = true;   // RateLimit-Policy and RateLimit
  bool legacy_fields = true;  // X-RateLimit-*
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Throws std::invalid_argument for an invalid policy name.
Headers rate_limit_headers(const Decision& decision, const HeaderOptions& options = {});

// Seconds for a header: rounded up, at least 0. Duration::max() renders as a large finite
// number of seconds (the request can never pass; clients should not retry).
std::int64_t header_seconds(Duration d);

}  // namespace keel::ratelimit
