// Validation of notification requests, templates and times.
#include "case_studies/notification_system/model.h"

#include <gmock/gmock.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;

const Templates kTemplates = {
    {"password_reset",
     {.subject = "Your code", .body = "Hello {{ name }}, your code is {{code}}."}}};

NotificationRequest parse(std::string_view json) {
  return parse_notification_request(boost::json::parse(json), kTemplates);
}

// The field named by the ValidationError that `json` raises ("" when none).
std::string failing_field(std::string_view json) {
  try {
    parse(json);
  } catch (const ValidationError& e) {
    return e.field();
  }
  return "";
}

TEST(ModelTest, ParsesAFullRequest) {
  const NotificationRequest r = parse(R"({"user_id": "u1", "channels": ["email", "sms"],
      "priority": "critical", "category": "security", "subject": "Sign-in", "body": "New sign-in",
      "send_at": "2026-01-01T10:00:00+01:00", "idempotency_key": "k-1"})");
  EXPECT_EQ(r.user_id, "u1");
  EXPECT_EQ(r.channels, (std::vector<Channel>{Channel::email, Channel::sms}));
  EXPECT_EQ(r.priority, Priority::critical);
  EXPECT_EQ(r.category, "security");
  EXPECT_EQ(r.subject, "Sign-in");
  EXPECT_EQ(format_time(*r.send_at), "2026-01-01T09:00:00Z");
  EXPECT_EQ(r.idempotency_key, "k-1");
}

TEST(ModelTest, PriorityDefaultsToNormal) {
  EXPECT_EQ(
      parse(R"({"user_id": "u1", "channels": ["push"], "category": "news", "body": "x"})").priority,
      Priority::normal);
}

TEST(ModelTest, BadInputNamesTheField) {
  EXPECT_EQ(failing_field(R"([1])"), "body");
  EXPECT_EQ(failing_field(R"({"channels": ["email"], "category": "c", "body": "x"})"), "user_id");
  EXPECT_EQ(failing_field(R"({"user_id": "u", "category": "c", "body": "x"})"), "channels");
  EXPECT_EQ(failing_field(R"({"user_id": "u", "channels": [], "category": "c", "body": "x"})"),
            "channels");
  EXPECT_EQ(failing_field(
                R"({"user_id": "u", "channels": ["email", "fax"], "category": "c", "body": "x"})"),
            "channels[1]");
  EXPECT_EQ(failing_field(
                R"({"user_id": "u", "channels": ["sms", "sms"], "category": "c", "body": "x"})"),
            "channels[1]");
  EXPECT_EQ(
      failing_field(
          R"({"user_id": "u", "channels": ["sms"], "priority": "urgent", "category": "c", "body": "x"})"),
      "priority");
  EXPECT_EQ(failing_field(R"({"user_id": "u", "channels": ["sms"], "body": "x"})"), "category");
  EXPECT_EQ(
      failing_field(R"({"user_id": "u", "channels": ["sms"], "category": "Bad Cat", "body": "x"})"),
      "category");
  EXPECT_EQ(failing_field(R"({"user_id": "u", "channels": ["sms"], "category": "c"})"), "body");
  EXPECT_EQ(
      failing_field(
          R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "send_at": "tomorrow"})"),
      "send_at");
  // Years that would overflow the clock, and what sscanf alone let through (review findings).
  for (const char* bad : {"9999-12-31T00:00:00Z", "0012-01-01T10:00:00Z", "2030-1-01T10:00:00Z",
                          " 2030-01-01T10:00:00Z", "2030-01-01T-1:00:00Z"}) {
    EXPECT_EQ(failing_field(fmt::format(
                  R"({{"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "send_at": "{}"}})",
                  bad)),
              "send_at")
        << bad;
  }
  EXPECT_EQ(
      failing_field(
          R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "sendAt": "x"})"),
      "sendAt");
  EXPECT_EQ(failing_field(R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": 3})"),
            "body");
  EXPECT_EQ(
      failing_field(
          R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "idempotency_key": ""})"),
      "idempotency_key");
}

TEST(ModelTest, UnknownChannelMessageListsTheChannels) {
  try {
    parse(R"({"user_id": "u", "channels": ["fax"], "category": "c", "body": "x"})");
    FAIL() << "expected a ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown channel 'fax' (email, sms, push, webhook)"));
  }
}

TEST(ModelTest, TemplatesAreRenderedWithTheirVariables) {
  const NotificationRequest r =
      parse(R"({"user_id": "u1", "channels": ["email"], "category": "security",
      "template": "password_reset", "variables": {"name": "Ada", "code": 123456}})");
  EXPECT_EQ(r.subject, "Your code");
  EXPECT_EQ(r.body, "Hello Ada, your code is 123456.");
  EXPECT_EQ(r.template_name, "password_reset");
}

TEST(ModelTest, AMissingTemplateVariableIsAClearError) {
  try {
    parse(R"({"user_id": "u1", "channels": ["email"], "category": "security",
              "template": "password_reset", "variables": {"name": "Ada"}})");
    FAIL() << "expected a ValidationError";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.field(), "variables.code");
    EXPECT_THAT(e.what(), HasSubstr("variables.code is missing"));
  }
  EXPECT_EQ(failing_field(
                R"({"user_id": "u", "channels": ["sms"], "category": "c", "template": "nope"})"),
            "template");
  EXPECT_EQ(
      failing_field(
          R"({"user_id": "u", "channels": ["sms"], "category": "c", "template": "password_reset", "body": "x"})"),
      "template");
  EXPECT_THROW(render_template("Hi {{name", {}, "body"), ValidationError);
}

TEST(ModelTest, FingerprintDependsOnContentNotOnTheKey) {
  NotificationRequest a = parse(
      R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "idempotency_key": "k1"})");
  NotificationRequest b = parse(
      R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "x", "idempotency_key": "k2"})");
  NotificationRequest c =
      parse(R"({"user_id": "u", "channels": ["sms"], "category": "c", "body": "y"})");
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_NE(a.fingerprint(), c.fingerprint());
}

TEST(ModelTest, TimesRoundTripInRfc3339) {
  EXPECT_EQ(format_time(*parse_time("2026-03-29T01:30:00.250Z")), "2026-03-29T01:30:00.250Z");
  EXPECT_EQ(format_time(*parse_time("2026-03-29T03:30:00+02:00")), "2026-03-29T01:30:00Z");
  EXPECT_FALSE(parse_time("2026-02-30T00:00:00Z").has_value());
  EXPECT_FALSE(parse_time("2026-01-01").has_value());
  EXPECT_EQ(from_millis(to_millis(*parse_time("2026-01-01T00:00:00.001Z"))),
            *parse_time("2026-01-01T00:00:00.001Z"));
}

TEST(ModelTest, StatusNamesRoundTrip) {
  for (const auto* name :
       {"queued", "scheduled", "sending", "sent", "retrying", "failed", "skipped", "cancelled"}) {
    const auto status = parse_delivery_status(name);
    ASSERT_TRUE(status.has_value()) << name;
    EXPECT_EQ(to_string(*status), name);
  }
  EXPECT_TRUE(is_final(DeliveryStatus::skipped));
  EXPECT_FALSE(is_final(DeliveryStatus::retrying));
}

}  // namespace
}  // namespace keel::notifier
