#include "case_studies/notification_system/model.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstdio>
#include <random>

#include "keel/core/encoding.h"
#include "keel/core/rfc3339.h"

namespace keel::notifier {

namespace {

constexpr std::array<std::string_view, 4> kPriorityNames = {"critical", "high", "normal", "low"};
constexpr std::array<std::string_view, 8> kStatusNames = {
    "queued", "scheduled", "sending", "sent", "retrying", "failed", "skipped", "cancelled"};

bool printable(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// A required or optional string field; throws ValidationError naming it.
std::optional<std::string> string_field(const boost::json::object& object, std::string_view name,
                                        bool required, std::size_t max_bytes) {
  const boost::json::value* value = object.if_contains(name);
  if (value == nullptr || value->is_null()) {
    if (required) throw ValidationError(std::string(name), fmt::format("\"{}\" is required", name));
    return std::nullopt;
  }
  if (!value->is_string()) {
    throw ValidationError(std::string(name), fmt::format("\"{}\" must be a string", name));
  }
  std::string text(value->as_string());
  if (required && text.empty()) {
    throw ValidationError(std::string(name), fmt::format("\"{}\" must not be empty", name));
  }
  if (text.size() > max_bytes) {
    throw ValidationError(std::string(name),
                          fmt::format("\"{}\" is {} bytes long; at most {} are allowed", name,
                                      text.size(), max_bytes));
  }
  return text;
}

std::vector<Channel> parse_channels(const boost::json::object& object) {
  const boost::json::value* value = object.if_contains("channels");
  if (value == nullptr || value->is_null()) {
    throw ValidationError("channels", "\"channels\" is required (email, sms, push, webhook)");
  }
  if (!value->is_array() || value->as_array().empty()) {
    throw ValidationError("channels", "\"channels\" must be a non-empty array of channel names");
  }
  std::vector<Channel> channels;
  const boost::json::array& items = value->as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string field = fmt::format("channels[{}]", i);
    if (!items[i].is_string())
      throw ValidationError(field, fmt::format("{} must be a string", field));
    const std::string_view name = items[i].as_string();
    const std::optional<Channel> channel = parse_channel(name);
    if (!channel) {
      throw ValidationError(field, fmt::format("{}: unknown channel {} (email, sms, push, webhook)",
                                               field, quote_for_message(name)));
    }
    for (const Channel seen : channels) {
      if (seen == *channel) {
        throw ValidationError(field, fmt::format("{}: channel {} is listed twice", field, name));
      }
    }
    channels.push_back(*channel);
  }
  return channels;
}

std::map<std::string, std::string, std::less<>> parse_variables(const boost::json::object& object) {
  std::map<std::string, std::string, std::less<>> variables;
  const boost::json::value* value = object.if_contains("variables");
  if (value == nullptr || value->is_null()) return variables;
  if (!value->is_object()) throw ValidationError("variables", "\"variables\" must be an object");
  for (const auto& [name, item] : value->as_object()) {
    const std::string field = fmt::format("variables.{}", std::string_view(name));
    if (item.is_string()) {
      variables.emplace(std::string(name), std::string(item.as_string()));
    } else if (item.is_int64() || item.is_uint64() || item.is_double() || item.is_bool()) {
      variables.emplace(std::string(name), boost::json::serialize(item));
    } else {
      throw ValidationError(field, fmt::format("{} must be a string, number or boolean", field));
    }
  }
  return variables;
}

void check_category(std::string_view category) {
  for (const char c : category) {
    const bool ok = std::islower(static_cast<unsigned char>(c)) != 0 ||
                    std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' ||
                    c == '.';
    if (!ok) {
      throw ValidationError("category",
                            fmt::format("category {} may only hold a-z, 0-9, '_', '-' and '.'",
                                        quote_for_message(category)));
    }
  }
}

std::string random_hex_id(std::string_view prefix) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, random(), static_cast<std::uint32_t>(random()));
}

}  // namespace

std::string_view to_string(Priority priority) noexcept {
  return kPriorityNames[static_cast<std::size_t>(priority)];
}

std::optional<Priority> parse_priority(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kPriorityNames.size(); ++i) {
    if (kPriorityNames[i] == text) return static_cast<Priority>(i);
  }
  return std::nullopt;
}

std::string_view to_string(DeliveryStatus status) noexcept {
  return kStatusNames[static_cast<std::size_t>(status)];
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i) {
    if (kStatusNames[i] == text) return static_cast<DeliveryStatus>(i);
  }
  return std::nullopt;
}

bool is_final(DeliveryStatus status) noexcept {
  return status == DeliveryStatus::sent || status == DeliveryStatus::failed ||
         status == DeliveryStatus::skipped || status == DeliveryStatus::cancelled;
}

std::string render_template(std::string_view text,
                            const std::map<std::string, std::string, std::less<>>& variables,
                            std::string_view field) {
  std::string out;
  out.reserve(text.size());
  std::size_t at = 0;
  while (true) {
    const std::size_t open = text.find("{{", at);
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      throw ValidationError(std::string(field),
                            fmt::format("{}: \"{{{{\" at offset {} is never closed", field, open));
    }
    out.append(text.substr(at, open - at));
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    const auto found = variables.find(name);
    if (found == variables.end()) {
      throw ValidationError(
          fmt::format("variables.{}", name),
          fmt::format("variables.{} is missing: the template's {} uses {{{{{}}}}}", name, field,
                      name));
    }
    out.append(found->second);
    at = close + 2;
  }
  out.append(text.substr(at));
  return out;
}

std::string NotificationRequest::fingerprint() const {
  boost::json::array channel_names;
  for (const Channel channel : channels) channel_names.emplace_back(to_string(channel));
  const boost::json::object canonical = {
      {"user_id", user_id},
      {"channels", std::move(channel_names)},
      {"priority", to_string(priority)},
      {"category", category},
      {"subject", subject},
      {"body", body},
      {"template", template_name},
      {"send_at", send_at ? boost::json::value(to_millis(*send_at)) : boost::json::value(nullptr)}};
  return sha256_hex(boost::json::serialize(canonical));
}

void validate_idempotency_key(std::string_view key, std::string_view field) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes || !printable(key)) {
    throw ValidationError(std::string(field), fmt::format("{} must be 1 to {} printable characters",
                                                          field, kMaxIdempotencyKeyBytes));
  }
}

NotificationRequest parse_notification_request(const boost::json::value& body,
                                               const Templates& templates) {
  if (!body.is_object()) throw ValidationError("body", "the request body must be a JSON object");
  const boost::json::object& object = body.as_object();
  static constexpr std::array<std::string_view, 10> kKnown = {
      "user_id", "channels", "priority",  "category", "subject",
      "body",    "template", "variables", "send_at",  "idempotency_key"};
  for (const auto& [name, value] : object) {
    if (std::find(kKnown.begin(), kKnown.end(), std::string_view(name)) == kKnown.end()) {
      throw ValidationError(std::string(name),
                            fmt::format("unknown field {}", quote_for_message(name)));
    }
  }

  NotificationRequest request;
  request.user_id = *string_field(object, "user_id", true, kMaxUserIdBytes);
  if (!printable(request.user_id) || request.user_id.find('/') != std::string::npos) {
    throw ValidationError("user_id", "user_id must be printable and must not contain '/'");
  }
  request.channels = parse_channels(object);
  if (const auto priority = string_field(object, "priority", false, 16)) {
    const std::optional<Priority> parsed = parse_priority(*priority);
    if (!parsed) {
      throw ValidationError("priority",
                            fmt::format("unknown priority {} (critical, high, normal, low)",
                                        quote_for_message(*priority)));
    }
    request.priority = *parsed;
  }
  request.category = *string_field(object, "category", true, kMaxCategoryBytes);
  check_category(request.category);

  const auto template_name = string_field(object, "template", false, 128);
  const auto subject = string_field(object, "subject", false, kMaxSubjectBytes);
  const auto text = string_field(object, "body", false, kMaxBodyBytes);
  const auto variables = parse_variables(object);
  if (template_name) {
    if (subject || text) {
      throw ValidationError("template",
                            "give either \"template\" or \"subject\"/\"body\", not both");
    }
    const auto found = templates.find(*template_name);
    if (found == templates.end()) {
      throw ValidationError("template",
                            fmt::format("unknown template {}", quote_for_message(*template_name)));
    }
    request.template_name = *template_name;
    request.subject = render_template(found->second.subject, variables, "subject");
    request.body = render_template(found->second.body, variables, "body");
  } else {
    if (!text || text->empty()) {
      throw ValidationError("body", "\"body\" (or \"template\") is required");
    }
    if (object.if_contains("variables") != nullptr && !variables.empty()) {
      throw ValidationError("variables", "\"variables\" needs a \"template\"");
    }
    request.subject = subject.value_or("");
    request.body = *text;
  }
  if (request.subject.find_first_of("\r\n") != std::string::npos) {
    throw ValidationError("subject", "subject must be one line");
  }

  if (const auto send_at = string_field(object, "send_at", false, 64)) {
    request.send_at = parse_time(*send_at);
    if (!request.send_at) {
      throw ValidationError("send_at", fmt::format("send_at {} is not an RFC 3339 date-time",
                                                   quote_for_message(*send_at)));
    }
  }
  if (const auto key = string_field(object, "idempotency_key", false, kMaxIdempotencyKeyBytes)) {
    validate_idempotency_key(*key, "idempotency_key");
    request.idempotency_key = *key;
  }
  return request;
}

std::string new_notification_id() { return random_hex_id("ntf_"); }
std::string new_delivery_id() { return random_hex_id("dlv_"); }

std::int64_t to_millis(WallTime at) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
}

WallTime from_millis(std::int64_t millis) noexcept {
  return WallTime{
      std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(millis))};
}

std::string format_time(WallTime at) {
  return format_rfc3339(at, Rfc3339Precision::milliseconds);
}

std::optional<WallTime> parse_time(std::string_view text) { return parse_rfc3339(text); }

}  // namespace keel::notifier
