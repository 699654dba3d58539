// The notifier's data model: a Notification asks for one message to reach one user over one or
// more channels; each channel becomes a Delivery with its own status, attempts and error.
//
//   NotificationRequest request = parse_notification_request(json, templates);  // validates
//   ... request.channels, request.priority, request.subject/body (templates already rendered)
//
// Validation throws ValidationError, whose field() names the offending JSON field ("channels[1]",
// "variables.code", "send_at"), so that the HTTP API answers 400 with it.
//
// Priorities, most urgent first: critical > high > normal > low. Delivery statuses:
//   queued     ready to be claimed by a worker
//   scheduled  waiting for send_at, the end of quiet hours or the user's rate limit
//   sending    a worker holds it and is calling the provider
//   sent       the provider took it (final)
//   retrying   a transient failure; waiting for the next attempt
//   failed     permanent error or attempts used up (final; the dead-letter list; retry by hand)
//   skipped    opted out or no address for the channel (final, with the reason)
//   cancelled  cancelled before it was sent (final)
//
// Everything here is a value type; the functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier {

// Bad input: what() is the whole message, field() the JSON field it is about.
class ValidationError : public std::invalid_argument {
 public:
  ValidationError(std::string field, const std::string& message)
      : std::invalid_argument(message), field_(std::move(field)) {}
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Ordered by urgency: a lower value is more urgent.
enum class Priority { critical = 0, high = 1, normal = 2, low = 3 };
std::string_view to_string(Priority priority) noexcept;
std::optional<Priority> parse_priority(std::string_view text) noexcept;

enum class DeliveryStatus {
  queued,
  scheduled,
  sending,
  sent,
  retrying,
  failed,
  skipped,
  cancelled
};
std::string_view to_string(DeliveryStatus status) noexcept;
std::optional<DeliveryStatus> parse_delivery_status(std::string_view text) noexcept;
// sent, failed, skipped, cancelled: nothing more will happen to the delivery on its own.
bool is_final(DeliveryStatus status) noexcept;

// A template: subject and body with {{name}} placeholders.
struct Template {
  std::string subject = {};
  std::string body = {};
};
using Templates = std::map<std::string, Template, std::less<>>;

// Replaces each {{name}} (spaces inside the braces allowed) by variables[name]. Throws
// ValidationError naming "variables.<name>" for a placeholder without a value, and `field` for an
// unclosed "{{".
std::string render_template(std::string_view text,
                            const std::map<std::string, std::string, std::less<>>& variables,
                            std::string_view field);

// A validated request to notify a user.
struct NotificationRequest {
  std::string user_id = {};
  std::vector<Channel> channels = {};  // distinct, in the order given
  Priority priority = Priority::normal;
  std::string category = {};
  std::string subject = {};  // rendered when a template was used
  std::string body = {};
  std::string template_name = {};  // empty when the content was given inline
  std::optional<WallTime> send_at = std::nullopt;
  std::string idempotency_key = {};  // empty = none

  // A digest of what the request asks for (not the key itself): the same key with another
  // fingerprint is a conflict.
  std::string fingerprint() const;
};

// Parses and validates a POST body:
//   {"user_id", "channels": ["email", ...], "priority"?: "normal", "category",
//    "subject"?, "body"? | "template", "variables"?: {name: string|number|bool},
//    "send_at"?: RFC 3339, "idempotency_key"?}
// `templates` resolves "template". Throws ValidationError naming the field.
NotificationRequest parse_notification_request(const boost::json::value& body,
                                               const Templates& templates);

// Limits on the fields (also what the errors say).
inline constexpr std::size_t kMaxUserIdBytes = 128;
inline constexpr std::size_t kMaxCategoryBytes = 64;
inline constexpr std::size_t kMaxSubjectBytes = 998;  // an RFC 5322 line
inline constexpr std::size_t kMaxBodyBytes = 32 * 1024;
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 255;

// Checks an idempotency key given in a header or the body (1..255 printable ASCII bytes).
void validate_idempotency_key(std::string_view key, std::string_view field);

// One channel of a notification.
struct Delivery {
  std::string id = {};
  std::string notification_id = {};
  Channel channel = Channel::email;
  DeliveryStatus status = DeliveryStatus::queued;
  int attempts = 0;             // provider calls made (an unavailable provider does not count)
  std::string last_error = {};  // or the reason of a skip / a hold
  WallTime due_at = {};         // when it may be claimed next (queued, scheduled, retrying)
  WallTime updated_at = {};
  std::string provider = {};  // the provider that took it, once sent
};

struct Notification {
  std::string id = {};
  std::string user_id = {};
  Priority priority = Priority::normal;
  std::string category = {};
  std::string subject = {};
  std::string body = {};
  std::string template_name = {};
  std::optional<WallTime> send_at = std::nullopt;
  std::string idempotency_key = {};
  std::string fingerprint = {};
  WallTime created_at = {};
  std::vector<Delivery> deliveries = {};
};

// Random identifiers: "ntf_" / "dlv_" followed by 24 lower-case hex digits.
std::string new_notification_id();
std::string new_delivery_id();

// RFC 3339 UTC ("2026-01-01T00:00:00Z"; milliseconds when not whole seconds) and its parser
// (offsets and fractions accepted); nullopt when invalid. Both are keel/core/rfc3339.h.
std::string format_time(WallTime at);
std::optional<WallTime> parse_time(std::string_view text);

// Milliseconds since the Unix epoch, the stores' representation of wall time.
std::int64_t to_millis(WallTime at) noexcept;
WallTime from_millis(std::int64_t millis) noexcept;

}  // namespace keel::notifier
