#include "case_studies/notification_system/channels/webhook_provider.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <optional>
#include <stdexcept>

#include "case_studies/notification_system/channels/internal/http_post.h"

namespace keel::notifier {
namespace {

std::int64_t unix_seconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(),
           &length) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  std::string hex;
  hex.reserve(2 * static_cast<std::size_t>(length));
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  return hex;
}

std::string signed_payload(std::int64_t t, std::string_view body) {
  return std::string(std::to_string(t)).append(".").append(body);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct ParsedSignature {
  std::optional<std::int64_t> t;
  std::vector<std::string_view> v1;
};

std::optional<ParsedSignature> parse_signature(std::string_view header) {
  ParsedSignature out;
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    const std::string_view item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      std::int64_t t = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), t);
      if (out.t || ec != std::errc{} || end != value.data() + value.size() || t < 0) {
        return std::nullopt;
      }
      out.t = t;
    } else if (key == "v1") {
      out.v1.push_back(value);
    }  // other schemes (v0, future versions) are ignored, as Stripe's receivers do
  }
  if (!out.t || out.v1.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::string sign_webhook(std::string_view secret, std::string_view body, WallTime at) {
  const std::int64_t t = unix_seconds(at);
  return fmt::format("t={},v1={}", t, hmac_sha256_hex(secret, signed_payload(t, body)));
}

bool verify_webhook_signature(std::string_view secret, std::string_view header,
                              std::string_view body, WallTime now, Duration tolerance) {
  const auto parsed = parse_signature(header);
  if (!parsed) return false;
  const auto age = std::chrono::seconds(unix_seconds(now) - *parsed->t);
  if (age > tolerance || -age > tolerance) return false;
  const std::string expected = hmac_sha256_hex(secret, signed_payload(*parsed->t, body));
  bool match = false;
  for (const std::string_view candidate : parsed->v1) {
    // Compare every candidate, in constant time for candidates of the right length.
    if (candidate.size() == expected.size() &&
        CRYPTO_memcmp(candidate.data(), expected.data(), expected.size()) == 0) {
      match = true;
    }
  }
  return match;
}

WebhookProvider::WebhookProvider(WebhookProviderOptions options, const Clock& clock)
    : options_(std::move(options)), guard_(options_.allowed_private_hosts), clock_(clock) {
  internal::ensure_curl_initialized();
  if (options_.secret.empty()) {
    throw std::invalid_argument("WebhookProviderOptions.secret: must not be empty");
  }
  internal::require_transport_options("WebhookProviderOptions", options_.connect_timeout,
                                      options_.timeout, options_.name);
  if (options_.max_payload_bytes == 0) {
    throw std::invalid_argument("WebhookProviderOptions.max_payload_bytes: must be > 0");
  }
}

std::string WebhookProvider::payload(const Message& m, WallTime at) {
  boost::json::object body{{"type", "notification"}};
  for (const auto& field : internal::message_fields(m)) body.emplace(field.key(), field.value());
  body["timestamp"] = unix_seconds(at);
  return boost::json::serialize(body);
}

SendResult WebhookProvider::send(const Message& message) {
  if (message.to.webhook_url.empty()) {
    return {.outcome = SendOutcome::permanent,
            .error = fmt::format("user {} has no webhook URL", message.user_id)};
  }
  const WallTime now = clock_.wall_now();
  internal::JsonPost post{.url = message.to.webhook_url,
                          .body = payload(message, now),
                          .connect_timeout = options_.connect_timeout,
                          .timeout = options_.timeout};
  if (post.body.size() > options_.max_payload_bytes) {
    return {.outcome = SendOutcome::permanent,
            .error = fmt::format("webhook payload of {} bytes exceeds the limit of {} bytes",
                                 post.body.size(), options_.max_payload_bytes)};
  }
  post.headers.push_back(fmt::format("{}: {}", kWebhookSignatureHeader,
                                     sign_webhook(options_.secret, post.body, now)));
  if (auto key = internal::idempotency_header(message)) post.headers.push_back(std::move(*key));
  if (!message.delivery_id.empty()) {
    post.headers.push_back(
        fmt::format("X-Keel-Delivery: {}", internal::header_safe_key(message.delivery_id)));
  }
  return internal::post_json(post, guard_, clock_);
}

}  // namespace keel::notifier
