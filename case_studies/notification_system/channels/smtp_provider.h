// SmtpProvider: the `email` channel over SMTP with libcurl. Each message is one SMTP session
// (EHLO, optional STARTTLS and AUTH, MAIL FROM, RCPT TO, DATA) carrying an RFC 5322 message:
//
//   Date: Thu, 01 Jan 2026 00:00:00 +0000                  (the Clock's wall time)
//   From: "Keel" <noreply@example.com>
//   To: <alice@example.com>
//   Subject: =?UTF-8?B?...?=                                 (RFC 2047 when not plain ASCII)
//   Message-ID: <9f86d081884c7d659a2feaa0c55ad015.keel@example.com>
//   MIME-Version: 1.0
//   Content-Type: text/plain; charset=utf-8
//   Content-Transfer-Encoding: 7bit                          (base64 when not 7-bit safe)
//   X-Keel-Notification-Id: n1
//   X-Keel-Delivery-Id: d1
//
// The Message-ID is derived from Message::idempotency_key (SHA-256, first 128 bits), so every
// retry of a delivery carries the same Message-ID and a receiving system can drop duplicates.
//
// Outcome: 250 after DATA → sent (provider_message_id = the Message-ID). Connection failures,
// timeouts and 4xx replies → transient. 5xx replies (550 no such mailbox, 554 rejected) →
// permanent, except 535 (authentication failed), which is transient: our credentials are wrong,
// not the recipient, and the breaker should open rather than every email fail for good. A
// missing or malformed recipient address → permanent, without a connection.
//
// Thread safety: send() may be called from any number of threads at once (a curl handle each).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier {

struct SmtpProviderOptions {
  // smtp://host[:port] (STARTTLS when the server offers it, or always with require_tls) or
  // smtps://host[:port] (implicit TLS). REQUIRES: non-empty.
  std::string url = {};
  // Envelope sender and From address. REQUIRES: a plain address ("noreply@example.com").
  std::string from = {};
  // Display name of the From header; any UTF-8. Default: none.
  std::string from_name = {};
  // AUTH credentials, used when the server offers AUTH. Never logged. Default: none.
  std::string username = {};
  std::string password = {};
  // Fail (transiently) rather than send in clear text when STARTTLS is not available.
  // Default: false.
  bool require_tls = false;
  // Default: 10 s to connect, 30 s for the whole session.
  Duration connect_timeout = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(30);
  // Provider name in metrics, logs and breaker names. Default: "smtp".
  std::string name = "smtp";
};

class SmtpProvider final : public Provider {
 public:
  // Throws std::invalid_argument for a url that is not smtp:// or smtps://, an invalid from
  // address, or non-positive timeouts. `clock` (the Date header) must outlive the provider.
  explicit SmtpProvider(SmtpProviderOptions options, const Clock& clock = default_clock());

  std::string_view name() const noexcept override { return options_.name; }
  SendResult send(const Message& message) override;

  // The RFC 5322 message sent for `message` (CRLF line ends), dated `date`.
  static std::string format_message(const Message& message, const SmtpProviderOptions& options,
                                    WallTime date);
  // The Message-ID for `message` in the domain of `from`, with its angle brackets.
  static std::string message_id(const Message& message, std::string_view from);

 private:
  SmtpProviderOptions options_;
  const Clock& clock_;
};

// True for an address usable in an SMTP envelope and a To header: local@domain, printable ASCII,
// no spaces, angle brackets, commas, quotes or parentheses, at most 254 bytes.
bool is_valid_email_address(std::string_view address) noexcept;

// `text` as a header value: CR, LF and other control characters become spaces; plain ASCII is
// kept as is, anything else becomes RFC 2047 encoded words (UTF-8, base64) folded on lines of
// at most 76 characters, never splitting a UTF-8 sequence.
std::string encode_header_text(std::string_view text);

}  // namespace keel::notifier
