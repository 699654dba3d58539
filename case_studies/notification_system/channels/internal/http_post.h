// Private to the notifier's channels: one guarded JSON POST over libcurl, shared by the HTTP
// (sms, push) and webhook providers, and the classification of its outcome.
//
// What post_json() guarantees:
// - only http:// and https:// URLs without user:password; no redirects followed (a 3xx is a
//   permanent failure), no proxy (a proxy would do its own DNS and defeat the pinning);
// - the host is resolved and checked by the AddressGuard once, and libcurl is pinned to the
//   checked addresses (CURLOPT_RESOLVE) and refused any other one at connect time
//   (CURLOPT_OPENSOCKETFUNCTION), so a second DNS answer cannot switch the target;
// - a connect timeout and a total timeout; at most max_response_bytes of the response are kept;
// - error texts name the host, never the path or query (webhook URLs often carry a token) and
//   never a header value (the bearer token).
//
// Thread safety: post_json() uses its own curl handle per call; safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "case_studies/notification_system/channels/address_guard.h"
#include "case_studies/notification_system/channels/internal/curl.h"
#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier::internal {

struct HttpUrl {
  std::string scheme = {};  // "http" or "https"
  std::string host = {};    // without brackets
  std::uint16_t port = 0;
};
// Parses an absolute http(s) URL as libcurl will. nullopt and `error` set when it is not one,
// has credentials in it, or no host.
std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error);

struct JsonPost {
  std::string url = {};
  std::string body = {};
  std::vector<std::string> headers = {};  // "Name: value"; values may be secret (never shown)
  Duration connect_timeout = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(10);
  std::size_t max_response_bytes = 64 * 1024;
};

struct HttpReply {
  long status = 0;
  std::string body = {};
  std::optional<std::string> retry_after = std::nullopt;  // the Retry-After header, raw
};

// Sends `post` and classifies the outcome: 2xx sent; 408, 429, 5xx and network errors transient
// (with Retry-After); a refused address, a bad URL and other statuses permanent. `reply`, when
// given, receives what the server answered.
SendResult post_json(const JsonPost& post, const AddressGuard& guard, const Clock& clock,
                     HttpReply* reply = nullptr);

// The delay a Retry-After header asks for: delta-seconds ("120") or an HTTP date (RFC 9110:
// IMF-fixdate, RFC 850 or asctime), measured from `now` (0 when the date has passed). nullopt
// for anything else.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, WallTime now);

// The Idempotency-Key a provider is given: the key itself when it is printable ASCII without
// spaces (at most 255 bytes), else its SHA-256 in hex, so a header never carries raw bytes.
std::string header_safe_key(std::string_view key);

// The fields every JSON body describing `message` carries: delivery_id, notification_id, user_id,
// category, priority, subject, body, attempt.
boost::json::object message_fields(const Message& message);

// The "Idempotency-Key: ..." header for a message (its idempotency_key, else its delivery_id),
// or nullopt when it has neither.
std::optional<std::string> idempotency_header(const Message& message);

}  // namespace keel::notifier::internal
