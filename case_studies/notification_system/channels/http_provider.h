// HttpProvider: the `sms` and `push` channels through an HTTP gateway adapter. Each message is
// one JSON POST to the configured endpoint:
//
//   POST /sms  Content-Type: application/json
//   Idempotency-Key: <Message::idempotency_key>     (stable across retries of the delivery)
//   Authorization: Bearer <token>                   (when configured; never logged)
//   {"channel":"sms","to":"+33612345678","delivery_id":"d1","notification_id":"n1",
//    "user_id":"u1","category":"security","priority":"critical","subject":"...","body":"...",
//    "attempt":1}
//
// `to` is the user's phone (sms), push token (push) or email address (email, for an HTTP email
// API). Outcome: 2xx → sent (the response's "id" or "message_id" becomes provider_message_id);
// 408, 429, 5xx and network errors or timeouts → transient, with the Retry-After header (seconds
// or an HTTP date) as retry_after; redirects and other 4xx → permanent. A user without the
// contact → permanent. The endpoint is subject to the AddressGuard (allowed_private_hosts).
//
// Thread safety: send() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "case_studies/notification_system/channels/address_guard.h"
#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier {

struct HttpProviderOptions {
  // The gateway's endpoint, an absolute http or https URL. REQUIRES: non-empty.
  std::string url = {};
  // Sent as "Authorization: Bearer <token>" when non-empty. Default: none.
  std::string bearer_token = {};
  // Provider name in metrics, logs and breaker names. Default: "http".
  std::string name = "http";
  // Default: 5 s to connect, 10 s for the whole exchange.
  Duration connect_timeout = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(10);
  // Hosts or addresses that may be reached although not public (e.g. "127.0.0.1").
  std::vector<std::string> allowed_private_hosts = {};
};

class HttpProvider final : public Provider {
 public:
  // Throws std::invalid_argument when the url is not an absolute http(s) URL, or a timeout is not
  // positive. `clock` (for Retry-After dates) must outlive the provider.
  explicit HttpProvider(HttpProviderOptions options, const Clock& clock = default_clock());

  std::string_view name() const noexcept override { return options_.name; }
  SendResult send(const Message& message) override;

  // The JSON body sent for `message` (exposed for tests and documentation).
  static std::string request_body(const Message& message);

 private:
  HttpProviderOptions options_;
  AddressGuard guard_;
  const Clock& clock_;
};

}  // namespace keel::notifier
