// The port between the notifier's delivery pipeline and the outside world: one Provider sends one
// message over one channel (an SMTP relay, an SMS gateway, a push service, a user's webhook).
//
//   SendResult r = provider.send(message);
//   switch (r.outcome) {
//     case SendOutcome::sent:      ...  // done; r.provider_message_id when the provider gave one
//     case SendOutcome::transient: ...  // retry later (network error, timeout, 429, 5xx);
//                                       // r.retry_after when the provider said when (Retry-After)
//     case SendOutcome::permanent: ...  // never retry (bad address, 4xx other than 408/429)
//   }
//
// A provider never throws for a failed delivery: it classifies it. An exception escaping send()
// is a bug in the provider; the pipeline treats it as transient and logs it.
//
// Providers receive Message::idempotency_key (stable across retries of one delivery) and pass it
// to the provider when the protocol allows (an Idempotency-Key header on HTTP, a Message-ID on
// email) so a resend after a crash can be absorbed there.
//
// Thread safety: send() may be called from several worker threads at once.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace keel::notifier {

enum class Channel { email, sms, push, webhook };

std::string_view to_string(Channel channel) noexcept;
// "email", "sms", "push", "webhook"; nullopt for anything else.
std::optional<Channel> parse_channel(std::string_view text) noexcept;

// Where a user can be reached. Empty = not known (that channel is skipped for the user).
struct Contacts {
  std::string email = {};
  std::string phone = {};
  std::string push_token = {};
  std::string webhook_url = {};
};

// The address of `channel` in `contacts` ("" when unknown).
const std::string& contact_for(const Contacts& contacts, Channel channel) noexcept;
// "email address", "phone number", "push token", "webhook URL".
std::string_view contact_name(Channel channel) noexcept;

struct Message {
  std::string notification_id = {};
  std::string delivery_id = {};
  std::string idempotency_key = {};  // stable across retries of this delivery
  Channel channel = Channel::email;
  std::string user_id = {};
  Contacts to = {};
  std::string category = {};
  std::string priority = {};  // "critical", "high", "normal", "low"
  std::string subject = {};   // rendered (templates already applied)
  std::string body = {};
  int attempt = 1;  // 1 for the first attempt
};

enum class SendOutcome { sent, transient, permanent };

struct SendResult {
  SendOutcome outcome = SendOutcome::sent;
  std::string error = {};  // human-readable; never contains credentials
  std::optional<std::chrono::seconds> retry_after = std::nullopt;
  std::string provider_message_id = {};
};

class Provider {
 public:
  virtual ~Provider() = default;
  // A short stable name used in metrics, logs and circuit-breaker names, e.g. "smtp", "console".
  virtual std::string_view name() const noexcept = 0;
  virtual SendResult send(const Message& message) = 0;
};

}  // namespace keel::notifier
