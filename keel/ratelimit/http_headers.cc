#include "keel/ratelimit/http_headers.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace keel::ratelimit {
namespace {

// The policy name is rendered as a structured-field string: printable ASCII, and we keep out
// the two characters that would need escaping.
void validate_policy(std::string_view policy) {
  const bool ok = !policy.empty() && std::all_of(policy.begin(), policy.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
  });
  if (!ok) {
    throw std::invalid_argument(fmt::format(
        "rate-limit policy name '{}' must be non-empty printable ASCII without '\"' or '\\'",
        policy));
  }
}

// A count as the fields carry it: the draft's parameters are structured-field integers, which
// are non-negative here and have at most 15 digits (RFC 8941, 3.3.1); a larger limit (a bucket
// sized "unlimited") or a negative remaining count would make the whole field unparseable.
constexpr std::int64_t kMaxFieldInteger = 999'999'999'999'999;
std::int64_t field_integer(std::int64_t n) {
  return std::clamp<std::int64_t>(n, 0, kMaxFieldInteger);
}

}  // namespace

std::int64_t header_seconds(Duration d) {
  if (d <= Duration::zero()) return 0;
  return std::chrono::ceil<std::chrono::seconds>(d).count();
}

Headers rate_limit_headers(const Decision& decision, const HeaderOptions& options) {
  validate_policy(options.policy);
  Headers headers;
  // A request that can never pass (more permits than the capacity) gets no Retry-After: waiting
  // would not help.
  if (!decision.allowed && decision.retry_after != Duration::max()) {
    headers.emplace_back("Retry-After", fmt::format("{}", header_seconds(decision.retry_after)));
  }
  const std::int64_t limit = field_integer(decision.limit);
  const std::int64_t remaining = field_integer(decision.remaining);
  const std::int64_t reset = header_seconds(decision.reset_after);
  if (options.draft_fields) {
    std::string policy = fmt::format("\"{}\";q={}", options.policy, limit);
    if (options.window) policy += fmt::format(";w={}", header_seconds(*options.window));
    headers.emplace_back("RateLimit-Policy", std::move(policy));
    headers.emplace_back("RateLimit",
                         fmt::format("\"{}\";r={};t={}", options.policy, remaining, reset));
  }
  if (options.legacy_fields) {
    headers.emplace_back("X-RateLimit-Limit", fmt::format("{}", limit));
    headers.emplace_back("X-RateLimit-Remaining", fmt::format("{}", remaining));
    headers.emplace_back("X-RateLimit-Reset", fmt::format("{}", reset));
  }
  return headers;
}

}  // namespace keel::ratelimit
