// Preferences and contacts (partial updates, validation) and quiet hours in real time zones.
#include "case_studies/notification_system/preferences.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "case_studies/notification_system/model.h"
#include "case_studies/notification_system/time_zone.h"

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;

WallTime at(std::string_view text) { return *parse_time(text); }

std::string patch_error_field(Preferences& p, std::string_view json) {
  try {
    apply_preferences_patch(p, boost::json::parse(json));
  } catch (const ValidationError& e) {
    return e.field();
  }
  return "";
}

TEST(PreferencesTest, APatchChangesOnlyWhatItNames) {
  Preferences p;
  apply_preferences_patch(
      p, boost::json::parse(R"({"channels": {"sms": false}, "categories": {"marketing": false}})"));
  apply_preferences_patch(
      p,
      boost::json::parse(
          R"({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Europe/Paris"}})"));
  apply_preferences_patch(p, boost::json::parse(R"({"channels": {"push": true}})"));
  EXPECT_FALSE(p.allows_channel(Channel::sms));
  EXPECT_TRUE(p.allows_channel(Channel::push));
  EXPECT_TRUE(p.allows_channel(Channel::email));
  EXPECT_FALSE(p.allows_category("marketing"));
  ASSERT_TRUE(p.quiet_hours.has_value());
  EXPECT_EQ(p.quiet_hours->start_minute, 22 * 60);
  EXPECT_EQ(p.quiet_hours->end_minute, 7 * 60);
  const Preferences round_trip = preferences_from_json(boost::json::serialize(to_json(p)));
  EXPECT_EQ(to_json(round_trip), to_json(p));
  apply_preferences_patch(p, boost::json::parse(R"({"quiet_hours": null})"));
  EXPECT_FALSE(p.quiet_hours.has_value());
}

TEST(PreferencesTest, BadPatchesNameTheFieldAndChangeNothing) {
  Preferences p;
  p.channels["sms"] = false;
  EXPECT_EQ(patch_error_field(p, R"({"channels": {"fax": false}})"), "channels.fax");
  EXPECT_EQ(patch_error_field(p, R"({"channels": {"sms": "no"}})"), "channels.sms");
  EXPECT_EQ(patch_error_field(
                p, R"({"quiet_hours": {"start": "25:00", "end": "07:00", "time_zone": "UTC"}})"),
            "quiet_hours.start");
  EXPECT_EQ(patch_error_field(
                p, R"({"quiet_hours": {"start": "22:00", "end": "7am", "time_zone": "UTC"}})"),
            "quiet_hours.end");
  EXPECT_EQ(
      patch_error_field(
          p, R"({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus"}})"),
      "quiet_hours.time_zone");
  EXPECT_EQ(
      patch_error_field(
          p,
          R"({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "../../etc/passwd"}})"),
      "quiet_hours.time_zone");
  EXPECT_EQ(patch_error_field(p, R"({"channels": {"email": false}, "colour": "blue"})"), "colour");
  EXPECT_TRUE(p.allows_channel(Channel::email)) << "a rejected patch must change nothing";
  EXPECT_FALSE(p.allows_channel(Channel::sms));
}

TEST(TimeZoneTest, ParisIsOneHourAheadInWinterAndTwoInSummer) {
  const TimeZone& paris = TimeZone::find("Europe/Paris");
  EXPECT_EQ(paris.offset_at(at("2026-01-15T12:00:00Z")), 1h);
  EXPECT_EQ(paris.offset_at(at("2026-07-15T12:00:00Z")), 2h);
  // Clocks go forward at 01:00 UTC on 2026-03-29.
  EXPECT_EQ(paris.offset_at(at("2026-03-29T00:59:59Z")), 1h);
  EXPECT_EQ(paris.offset_at(at("2026-03-29T01:00:00Z")), 2h);
  EXPECT_EQ(TimeZone::find("America/New_York").offset_at(at("2026-01-15T12:00:00Z")), -5h);
  EXPECT_EQ(TimeZone::find("UTC").offset_at(at("2026-01-15T12:00:00Z")), 0h);
  EXPECT_THROW(TimeZone::find("Nowhere/City"), std::invalid_argument);
  EXPECT_THROW(TimeZone::parse("bad", "not a tzif file"), std::invalid_argument);
}

TEST(QuietHoursTest, HoldsUntilTheEndInTheUsersTimeZone) {
  const QuietHours night{
      .start_minute = 22 * 60, .end_minute = 7 * 60, .time_zone = "Europe/Paris"};
  // 23:30 in Paris (winter, UTC+1) → held until 07:00 Paris the next day = 06:00Z.
  EXPECT_EQ(quiet_hours_end(night, at("2026-01-15T22:30:00Z")), at("2026-01-16T06:00:00Z"));
  // 03:00 in Paris → until 07:00 the same day.
  EXPECT_EQ(quiet_hours_end(night, at("2026-01-16T02:00:00Z")), at("2026-01-16T06:00:00Z"));
  // Summer (UTC+2): 07:00 Paris = 05:00Z.
  EXPECT_EQ(quiet_hours_end(night, at("2026-07-16T01:00:00Z")), at("2026-07-16T05:00:00Z"));
  // 12:00 Paris is not quiet.
  EXPECT_EQ(quiet_hours_end(night, at("2026-01-16T11:00:00Z")), std::nullopt);
  // The night the clocks go forward: 07:00 is already summer time.
  EXPECT_EQ(quiet_hours_end(night, at("2026-03-28T23:00:00Z")), at("2026-03-29T05:00:00Z"));
  const QuietHours lunch{.start_minute = 12 * 60, .end_minute = 14 * 60, .time_zone = "UTC"};
  EXPECT_EQ(quiet_hours_end(lunch, at("2026-01-16T13:00:00Z")), at("2026-01-16T14:00:00Z"));
  EXPECT_EQ(quiet_hours_end(lunch, at("2026-01-16T14:00:00Z")), std::nullopt);
}

TEST(ContactsTest, APatchValidatesAndKeepsWhatItDoesNotName) {
  Contacts c;
  apply_contacts_patch(
      c, boost::json::parse(R"({"email": "ada@example.com", "phone": "+33612345678"})"));
  apply_contacts_patch(
      c,
      boost::json::parse(R"({"push_token": "tok", "webhook_url": "https://hooks.example.com/x"})"));
  EXPECT_EQ(c.email, "ada@example.com");
  EXPECT_EQ(c.phone, "+33612345678");
  EXPECT_EQ(contact_for(c, Channel::push), "tok");
  EXPECT_EQ(contact_for(c, Channel::webhook), "https://hooks.example.com/x");
  const auto field_of = [&](std::string_view json) -> std::string {
    try {
      apply_contacts_patch(c, boost::json::parse(json));
    } catch (const ValidationError& e) {
      return e.field();
    }
    return "";
  };
  EXPECT_EQ(field_of(R"({"email": "not-an-address"})"), "email");
  EXPECT_EQ(field_of(R"({"phone": "0612345678"})"), "phone");
  EXPECT_EQ(field_of(R"({"webhook_url": "ftp://x"})"), "webhook_url");
  EXPECT_EQ(field_of(R"({"fax": "1"})"), "fax");
  EXPECT_EQ(c.email, "ada@example.com");
  apply_contacts_patch(c, boost::json::parse(R"({"phone": null})"));
  EXPECT_TRUE(c.phone.empty());
}

}  // namespace
}  // namespace keel::notifier
