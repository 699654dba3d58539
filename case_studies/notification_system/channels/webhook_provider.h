// WebhookProvider: the `webhook` channel. POSTs a JSON payload to the user's
// Contacts::webhook_url, signed so that the receiver can tell it comes from us, unaltered and
// recent:
//
//   POST <webhook_url>   Content-Type: application/json
//   X-Keel-Signature: t=1767225600,v1=5257a869e7ec...   (hex HMAC-SHA256)
//   Idempotency-Key: <Message::idempotency_key>
//   X-Keel-Delivery: <Message::delivery_id>
//   {"type":"notification","delivery_id":"d1","notification_id":"n1","user_id":"u1",
//    "category":"billing","priority":"normal","subject":"...","body":"...","attempt":1,
//    "timestamp":1767225600}
//
// The signature (the scheme Stripe uses): t is the Unix time of signing (the Clock's wall time),
// v1 = hex(HMAC-SHA256(secret, "<t>.<raw body>")). A receiver recomputes v1 over the exact bytes
// it received, compares in constant time and rejects a t older than its tolerance (replays):
// verify_webhook_signature() does all of that. During a secret rotation a header may carry
// several v1 values; one match suffices.
//
// SSRF: the URL must be http(s) without credentials; its host is resolved once and every address
// must be public unless allowed (see AddressGuard), then the connection is pinned to the checked
// addresses; redirects are refused (a 3xx is a permanent failure); the payload is limited in
// size. A refused address is `permanent` with an error saying why.
//
// Thread safety: send() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "case_studies/notification_system/channels/address_guard.h"
#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier {

inline constexpr std::string_view kWebhookSignatureHeader = "X-Keel-Signature";

struct WebhookProviderOptions {
  // The HMAC key shared with the receivers. REQUIRES: non-empty. Never logged.
  std::string secret = {};
  // Provider name in metrics, logs and breaker names. Default: "webhook".
  std::string name = "webhook";
  // Default: 5 s to connect, 10 s for the whole exchange.
  Duration connect_timeout = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(10);
  // A larger payload is a permanent failure, not sent. REQUIRES: > 0. Default: 64 KiB.
  std::size_t max_payload_bytes = 64 * 1024;
  // Hosts or addresses that may be reached although not public (e.g. "127.0.0.1").
  std::vector<std::string> allowed_private_hosts = {};
};

class WebhookProvider final : public Provider {
 public:
  // Throws std::invalid_argument for an empty secret, non-positive timeouts or payload limit.
  // `clock` (signature timestamps) must outlive the provider.
  explicit WebhookProvider(WebhookProviderOptions options, const Clock& clock = default_clock());

  std::string_view name() const noexcept override { return options_.name; }
  SendResult send(const Message& message) override;

  // The JSON payload for `message`, stamped with `at` (exposed for tests and documentation).
  static std::string payload(const Message& message, WallTime at);

 private:
  WebhookProviderOptions options_;
  AddressGuard guard_;
  const Clock& clock_;
};

// The X-Keel-Signature value for `body` signed at `at`: "t=<unix seconds>,v1=<hex>".
std::string sign_webhook(std::string_view secret, std::string_view body, WallTime at);

// For receivers: true when `header` (an X-Keel-Signature value) carries a v1 signature of
// `body` under `secret`, and its t is within `tolerance` of `now` (either way). False for a
// malformed header, an old or future timestamp, or a mismatch; comparisons are constant-time.
bool verify_webhook_signature(std::string_view secret, std::string_view header,
                              std::string_view body, WallTime now,
                              Duration tolerance = std::chrono::minutes(5));

}  // namespace keel::notifier
