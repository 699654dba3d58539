#include "case_studies/notification_system/preferences.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>

#include "case_studies/notification_system/model.h"
#include "case_studies/notification_system/time_zone.h"
#include "keel/core/encoding.h"

namespace keel::notifier {

namespace {

void patch_flags(std::map<std::string, bool, std::less<>>& flags, const boost::json::value& value,
                 std::string_view field, bool channel_names) {
  if (value.is_null()) return;
  if (!value.is_object()) {
    throw ValidationError(std::string(field),
                          fmt::format("\"{}\" must be an object of booleans", field));
  }
  for (const auto& [name, allowed] : value.as_object()) {
    const std::string item = fmt::format("{}.{}", field, std::string_view(name));
    if (channel_names && !parse_channel(name)) {
      throw ValidationError(item,
                            fmt::format("{}: unknown channel (email, sms, push, webhook)", item));
    }
    if (name.empty() || name.size() > kMaxCategoryBytes) {
      throw ValidationError(
          item, fmt::format("{}: a name of 1 to {} bytes is required", item, kMaxCategoryBytes));
    }
    if (!allowed.is_bool())
      throw ValidationError(item, fmt::format("{} must be true or false", item));
    flags[std::string(name)] = allowed.as_bool();
  }
}

int parse_clock_time(const boost::json::object& object, std::string_view name) {
  const std::string field = fmt::format("quiet_hours.{}", name);
  const boost::json::value* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) {
    throw ValidationError(field, fmt::format("{} is required as \"HH:MM\"", field));
  }
  const std::string_view text = value->as_string();
  const auto digit = [&](std::size_t i) {
    return std::isdigit(static_cast<unsigned char>(text[i])) != 0;
  };
  if (text.size() != 5 || text[2] != ':' || !digit(0) || !digit(1) || !digit(3) || !digit(4)) {
    throw ValidationError(
        field, fmt::format("{} must be \"HH:MM\", got {}", field, quote_for_message(text)));
  }
  const int hours = (text[0] - '0') * 10 + (text[1] - '0');
  const int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (hours > 23 || minutes > 59) {
    throw ValidationError(
        field, fmt::format("{} {} is not a time of day", field, quote_for_message(text)));
  }
  return hours * 60 + minutes;
}

QuietHours parse_quiet_hours(const boost::json::value& value) {
  if (!value.is_object()) {
    throw ValidationError("quiet_hours",
                          "\"quiet_hours\" must be an object {start, end, time_zone} or null");
  }
  const boost::json::object& object = value.as_object();
  QuietHours quiet;
  quiet.start_minute = parse_clock_time(object, "start");
  quiet.end_minute = parse_clock_time(object, "end");
  const boost::json::value* zone = object.if_contains("time_zone");
  if (zone == nullptr || !zone->is_string()) {
    throw ValidationError(
        "quiet_hours.time_zone",
        "quiet_hours.time_zone is required (an IANA name such as \"Europe/Paris\")");
  }
  quiet.time_zone = std::string(zone->as_string());
  try {
    (void)TimeZone::find(quiet.time_zone);
  } catch (const std::invalid_argument& e) {
    throw ValidationError("quiet_hours.time_zone",
                          fmt::format("quiet_hours.time_zone: {}", e.what()));
  }
  return quiet;
}

std::string format_clock_time(int minute) {
  return fmt::format("{:02}:{:02}", minute / 60, minute % 60);
}

bool valid_email(std::string_view email) {
  const std::size_t at = email.find('@');
  // RFC 5321 4.5.3.1: a local part of at most 64 bytes, and a path of at most 256 with its
  // angle brackets, so an address of at most 254.
  return email.size() <= 254 && at != 0 && at != email.npos && at <= 64 &&
         at + 1 < email.size() &&
         email.find('@', at + 1) == email.npos &&
         email.find_first_of(" \t\r\n<>,;\"") == email.npos;
}

bool valid_phone(std::string_view phone) {
  if (phone.size() < 4 || phone.size() > 16 || phone[0] != '+') return false;
  for (std::size_t i = 1; i < phone.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(phone[i])) == 0) return false;
  }
  return true;
}

bool valid_webhook_url(std::string_view url) {
  return (url.starts_with("https://") || url.starts_with("http://")) && url.size() <= 2048 &&
         url.find_first_of(" \t\r\n") == url.npos;
}

}  // namespace

bool Preferences::allows_channel(Channel channel) const {
  const auto found = channels.find(to_string(channel));
  return found == channels.end() || found->second;
}

bool Preferences::allows_category(std::string_view category) const {
  const auto found = categories.find(category);
  return found == categories.end() || found->second;
}

void apply_preferences_patch(Preferences& preferences, const boost::json::value& patch) {
  if (!patch.is_object()) throw ValidationError("body", "the request body must be a JSON object");
  Preferences updated = preferences;
  for (const auto& [key, value] : patch.as_object()) {
    if (key == "channels") {
      patch_flags(updated.channels, value, "channels", true);
    } else if (key == "categories") {
      patch_flags(updated.categories, value, "categories", false);
    } else if (key == "quiet_hours") {
      updated.quiet_hours =
          value.is_null() ? std::nullopt : std::optional<QuietHours>(parse_quiet_hours(value));
    } else {
      throw ValidationError(std::string(key),
                            fmt::format("unknown field {}", quote_for_message(key)));
    }
  }
  preferences = std::move(updated);
}

boost::json::object to_json(const Preferences& preferences) {
  boost::json::object channels, categories;
  for (const auto& [name, allowed] : preferences.channels) channels[name] = allowed;
  for (const auto& [name, allowed] : preferences.categories) categories[name] = allowed;
  boost::json::value quiet = nullptr;
  if (preferences.quiet_hours) {
    quiet = boost::json::object{{"start", format_clock_time(preferences.quiet_hours->start_minute)},
                                {"end", format_clock_time(preferences.quiet_hours->end_minute)},
                                {"time_zone", preferences.quiet_hours->time_zone}};
  }
  return {{"channels", std::move(channels)},
          {"categories", std::move(categories)},
          {"quiet_hours", std::move(quiet)}};
}

Preferences preferences_from_json(std::string_view text) {
  Preferences preferences;
  try {
    apply_preferences_patch(preferences, boost::json::parse(text));
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("stored preferences are invalid: {}", e.what()));
  }
  return preferences;
}

std::optional<WallTime> quiet_hours_end(const QuietHours& quiet, WallTime at) {
  if (quiet.start_minute == quiet.end_minute) return std::nullopt;
  const TimeZone& zone = TimeZone::find(quiet.time_zone);
  using std::chrono::days;
  using std::chrono::minutes;
  const auto local =
      std::chrono::floor<std::chrono::seconds>(at.time_since_epoch() + zone.offset_at(at));
  const std::chrono::sys_seconds local_time{local};
  const auto midnight = std::chrono::floor<days>(local_time);
  const int minute =
      static_cast<int>(std::chrono::duration_cast<minutes>(local_time - midnight).count());
  const bool spans_midnight = quiet.start_minute > quiet.end_minute;
  const bool quiet_now = spans_midnight
                             ? (minute >= quiet.start_minute || minute < quiet.end_minute)
                             : (minute >= quiet.start_minute && minute < quiet.end_minute);
  if (!quiet_now) return std::nullopt;
  // The end is today, unless the window started today and ends after midnight.
  auto end_day = midnight;
  if (spans_midnight && minute >= quiet.start_minute) end_day += days(1);
  return zone.to_utc(std::chrono::sys_seconds(end_day + minutes(quiet.end_minute)));
}

void apply_contacts_patch(Contacts& contacts, const boost::json::value& patch) {
  if (!patch.is_object()) throw ValidationError("body", "the request body must be a JSON object");
  Contacts updated = contacts;
  for (const auto& [key, value] : patch.as_object()) {
    const std::string field(key);
    std::string* target = nullptr;
    bool (*valid)(std::string_view) = nullptr;
    std::string_view expected;
    if (key == "email") {
      target = &updated.email, valid = valid_email, expected = "an email address";
    } else if (key == "phone") {
      target = &updated.phone, valid = valid_phone,
      expected = "an E.164 number such as +33612345678";
    } else if (key == "push_token") {
      target = &updated.push_token, valid = [](std::string_view t) { return t.size() <= 4096; };
      expected = "a token of at most 4096 bytes";
    } else if (key == "webhook_url") {
      target = &updated.webhook_url, valid = valid_webhook_url,
      expected = "an http:// or https:// URL";
    } else {
      throw ValidationError(field, fmt::format("unknown field {}", quote_for_message(key)));
    }
    if (value.is_null()) {
      target->clear();
      continue;
    }
    if (!value.is_string())
      throw ValidationError(field, fmt::format("\"{}\" must be a string", field));
    const std::string_view text = value.as_string();
    if (!text.empty() && !valid(text)) {
      throw ValidationError(
          field, fmt::format("{} {} is not {}", field, quote_for_message(text), expected));
    }
    *target = std::string(text);
  }
  contacts = std::move(updated);
}

boost::json::object to_json(const Contacts& contacts) {
  return {{"email", contacts.email},
          {"phone", contacts.phone},
          {"push_token", contacts.push_token},
          {"webhook_url", contacts.webhook_url}};
}

}  // namespace keel::notifier
