// A user's preferences (which channels and categories they accept, quiet hours in their time
// zone) and contacts (where each channel reaches them), with the partial updates the HTTP API
// applies:
//
//   Preferences p = store.preferences("u1", Pool::standard);
//   apply_preferences_patch(p, json::parse(R"({"channels": {"sms": false}})"));  // rest unchanged
//   if (auto until = quiet_hours_end(*p.quiet_hours, now)) hold_until(*until);
//
// Rules (docs/notification_system.md, "Preferences"): a channel or category absent from the maps
// is allowed; categories listed as mandatory (e.g. "security") ignore opt-outs; quiet hours hold
// non-critical deliveries until they end, in the user's IANA time zone (time_zone.h).
//
// Value types and pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"

namespace keel::notifier {

struct QuietHours {
  int start_minute = 0;  // minutes after local midnight, [0, 1440)
  int end_minute = 0;    // may be before start (22:00-07:00 spans midnight); == start: never quiet
  std::string time_zone = "UTC";
};

struct Preferences {
  std::map<std::string, bool, std::less<>> channels = {};    // channel name -> allowed
  std::map<std::string, bool, std::less<>> categories = {};  // category -> allowed
  std::optional<QuietHours> quiet_hours = std::nullopt;

  bool allows_channel(Channel channel) const;
  bool allows_category(std::string_view category) const;
};

// Applies a PUT body {"channels"?: {name: bool}, "categories"?: {name: bool},
// "quiet_hours"?: {"start": "HH:MM", "end": "HH:MM", "time_zone": IANA} | null}: each key given
// replaces that entry, what is left out stays. On error (ValidationError naming the field, e.g.
// "channels.fax", "quiet_hours.time_zone") `preferences` is unchanged.
void apply_preferences_patch(Preferences& preferences, const boost::json::value& patch);
boost::json::object to_json(const Preferences& preferences);
// The stored form (to_json's text) back; throws std::invalid_argument when it is not.
Preferences preferences_from_json(std::string_view text);

// When `at` falls in the quiet hours, the instant they end; nullopt otherwise.
std::optional<WallTime> quiet_hours_end(const QuietHours& quiet, WallTime at);

// Applies a PUT body {"email"?, "phone"?, "push_token"?, "webhook_url"?} (null or "" clears);
// validates each (email with '@', phone E.164 "+<digits>", webhook_url http(s)://). On error
// (ValidationError naming the field) `contacts` is unchanged.
void apply_contacts_patch(Contacts& contacts, const boost::json::value& patch);
boost::json::object to_json(const Contacts& contacts);

}  // namespace keel::notifier
