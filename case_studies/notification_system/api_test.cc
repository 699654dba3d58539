// The notifier's HTTP API over real loopback HTTP (keel::http::Server and Client), on SQLite,
// with a ManualClock driving the workers.
#include "case_studies/notification_system/api.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "case_studies/notification_system/sqlite_store.h"
#include "case_studies/notification_system/test_providers.h"
#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/support/temp_dir.h"

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;
using ::testing::HasSubstr;
using testing::ScriptedProvider;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NotifierOptions o;
    o.clock = &clock_;
    o.scheduler = &scheduler_;
    o.critical_workers = {.executor = &scheduler_, .threads = 1};
    o.standard_workers = {.executor = &scheduler_, .threads = 1};
    o.retry.jitter = Jitter::none;
    o.poll_interval = Duration::zero();
    o.metrics = &metrics_;
    o.templates = {{"welcome", {.subject = "Welcome {{name}}", .body = "Hello {{name}}!"}}};
    notifier_ = std::make_unique<Notifier>(store_, *dispatcher_, o);
    notifier_->start();
    api_ = std::make_unique<Api>(*notifier_);
    http::Router router;
    api_->add_routes(router);
    server_ = std::make_unique<http::Server>(std::move(router),
                                             http::ServerOptions{.metrics = &metrics_});
    server_->start();
    client_ = std::make_unique<http::Client>("127.0.0.1", server_->port());
    put("/api/v1/users/u1/contacts", R"({"email": "ada@example.com", "phone": "+33612345678"})");
  }
  void TearDown() override {
    server_->stop();
    notifier_->stop();
  }
  http::Response send(Method method, const std::string& target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return client_->request(method, target, std::move(body), headers);
  }
  http::Response post(const std::string& body,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    return send(Method::post, "/api/v1/notifications", body, std::move(headers));
  }
  http::Response put(const std::string& target, const std::string& body) {
    return send(Method::put, target, body);
  }
  static boost::json::object json(const http::Response& r) {
    return boost::json::parse(r.body()).as_object();
  }
  static std::string id_of(const http::Response& r) {
    return std::string(json(r).at("id").as_string());
  }

  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  keel::testing::TempDir dir_{"keel-notifier-api"};
  SqliteNotificationStore store_{(dir_.path() / "notifier.db").string()};
  std::shared_ptr<ScriptedProvider> email_ =
      std::make_shared<ScriptedProvider>("email-test", clock_);
  std::shared_ptr<ScriptedProvider> sms_ = std::make_shared<ScriptedProvider>("sms-test", clock_);
  std::unique_ptr<Dispatcher> dispatcher_ = make_dispatcher(
      std::map<Channel, ChannelProviders>{{Channel::email, {email_}}, {Channel::sms, {sms_}}},
      {.clock = &clock_});
  MetricsRegistry metrics_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(ApiTest, ANotificationWhoseEveryChannelIsSkippedSaysSoInItsDeliveries) {
  put("/api/v1/users/u1/preferences", R"({"channels": {"email": false, "sms": false}})");
  const http::Response created = post(R"({"user_id": "u1", "channels": ["email", "sms"],
      "category": "billing", "subject": "Invoice", "body": "Ready"})");
  ASSERT_EQ(created.result(), Status::accepted) << created.body();
  const auto body = json(created);
  EXPECT_EQ(body.at("status").as_string(), "queued") << "the contract: queued or scheduled";
  const auto& deliveries = body.at("deliveries").as_array();
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_EQ(deliveries[0].at("status").as_string(), "skipped");
  EXPECT_EQ(deliveries[0].at("last_error").as_string(), "user opted out of email");
  EXPECT_EQ(deliveries[1].at("status").as_string(), "skipped");
  EXPECT_EQ(deliveries[1].at("last_error").as_string(), "user opted out of sms");
  clock_.advance(1h);
  EXPECT_TRUE(email_->calls().empty());
  EXPECT_TRUE(sms_->calls().empty());
  const http::Response shown =
      client_->get(fmt::format("/api/v1/notifications/{}", id_of(created)));
  EXPECT_EQ(json(shown).at("status").as_string(), "done") << "after intake, all final is done";
}

TEST_F(ApiTest, AcceptsANotificationAndShowsItsDeliveries) {
  const http::Response created = post(R"({"user_id": "u1", "channels": ["email", "sms"],
      "priority": "high", "category": "billing", "subject": "Invoice", "body": "Ready"})");
  ASSERT_EQ(created.result(), Status::accepted) << created.body();
  const auto body = json(created);
  EXPECT_EQ(body.at("status").as_string(), "queued");
  ASSERT_EQ(body.at("deliveries").as_array().size(), 2u);
  const std::string id = id_of(created);
  clock_.advance(0s);
  const http::Response shown = client_->get(fmt::format("/api/v1/notifications/{}", id));
  ASSERT_EQ(shown.result(), Status::ok);
  const auto n = json(shown);
  EXPECT_EQ(n.at("user_id").as_string(), "u1");
  EXPECT_EQ(n.at("priority").as_string(), "high");
  EXPECT_EQ(n.at("category").as_string(), "billing");
  const auto& deliveries = n.at("deliveries").as_array();
  EXPECT_EQ(deliveries[0].at("channel").as_string(), "email");
  EXPECT_EQ(deliveries[0].at("status").as_string(), "sent");
  EXPECT_EQ(deliveries[0].at("attempts").as_int64(), 1);
  EXPECT_EQ(deliveries[0].at("last_error").as_string(), "");
  EXPECT_EQ(deliveries[0].at("updated_at").as_string(), "2026-01-01T00:00:00Z");
  EXPECT_EQ(deliveries[1].at("status").as_string(), "sent");
  EXPECT_EQ(n.at("status").as_string(), "done") << "every delivery is final: nothing is queued";
  EXPECT_EQ(client_->get("/api/v1/notifications/ntf_nope").result(), Status::not_found);
}

TEST_F(ApiTest, BadInputIsA400NamingTheField) {
  const auto field_of = [&](const std::string& body) {
    const http::Response r = post(body);
    EXPECT_EQ(r.result(), Status::bad_request) << body;
    return std::string(json(r).at("error").at("field").as_string());
  };
  EXPECT_EQ(field_of(R"({"user_id": "u1", "channels": ["fax"], "category": "c", "body": "x"})"),
            "channels[0]");
  EXPECT_EQ(
      field_of(
          R"({"user_id": "u1", "channels": ["sms"], "priority": "asap", "category": "c", "body": "x"})"),
      "priority");
  EXPECT_EQ(field_of(R"({"channels": ["sms"], "category": "c", "body": "x"})"), "user_id");
  EXPECT_EQ(
      field_of(R"({"user_id": "u1", "channels": ["sms"], "category": "c", "template": "welcome"})"),
      "variables.name");
  const http::Response not_json = post("{nope");
  EXPECT_EQ(not_json.result(), Status::bad_request);
  EXPECT_EQ(json(not_json).at("error").at("code").as_string(), "invalid_json");
}

TEST_F(ApiTest, IdempotencyKeysReturnTheFirstNotificationOrConflict) {
  const std::string body =
      R"({"user_id": "u1", "channels": ["email"], "category": "c", "body": "x"})";
  const http::Response first = post(body, {{"Idempotency-Key", "abc"}});
  ASSERT_EQ(first.result(), Status::accepted);
  const http::Response again = post(body, {{"Idempotency-Key", "abc"}});
  EXPECT_EQ(again.result(), Status::ok);
  EXPECT_EQ(id_of(again), id_of(first));
  const http::Response in_body = post(
      R"({"user_id": "u1", "channels": ["email"], "category": "c", "body": "x", "idempotency_key": "abc"})");
  EXPECT_EQ(in_body.result(), Status::ok) << "the body field and the header are the same key";
  const http::Response other =
      post(R"({"user_id": "u1", "channels": ["email"], "category": "c", "body": "y"})",
           {{"Idempotency-Key", "abc"}});
  EXPECT_EQ(other.result(), Status::unprocessable_entity);
  EXPECT_EQ(json(other).at("error").at("code").as_string(), "idempotency_conflict");
  clock_.advance(0s);
  EXPECT_EQ(email_->calls().size(), 1u);
}

TEST_F(ApiTest, ScheduledNotificationsCanBeCancelled) {
  const http::Response created = post(R"({"user_id": "u1", "channels": ["email", "sms"],
      "category": "reminders", "body": "Meeting", "send_at": "2026-01-01T09:00:00Z"})");
  ASSERT_EQ(created.result(), Status::accepted);
  EXPECT_EQ(json(created).at("status").as_string(), "scheduled");
  const std::string id = id_of(created);
  const http::Response cancelled =
      send(Method::delete_, fmt::format("/api/v1/notifications/{}", id));
  ASSERT_EQ(cancelled.result(), Status::ok);
  EXPECT_EQ(json(cancelled).at("cancelled").as_array().size(), 2u);
  clock_.advance(10h);
  const auto n = json(client_->get(fmt::format("/api/v1/notifications/{}", id)));
  EXPECT_EQ(n.at("deliveries").as_array()[0].at("status").as_string(), "cancelled");
  EXPECT_TRUE(email_->calls().empty());
  EXPECT_EQ(send(Method::delete_, "/api/v1/notifications/ntf_nope").result(), Status::not_found);
}

TEST_F(ApiTest, PreferencesArePartiallyUpdatedAndApplied) {
  http::Response r = put("/api/v1/users/u1/preferences", R"({"channels": {"sms": false}})");
  ASSERT_EQ(r.result(), Status::ok) << r.body();
  r = put(
      "/api/v1/users/u1/preferences",
      R"({"categories": {"marketing": true}, "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Europe/Paris"}})");
  ASSERT_EQ(r.result(), Status::ok);
  const auto p = json(client_->get("/api/v1/users/u1/preferences"));
  EXPECT_FALSE(p.at("channels").at("sms").as_bool()) << "left out, so kept";
  EXPECT_TRUE(p.at("categories").at("marketing").as_bool());
  EXPECT_EQ(p.at("quiet_hours").at("time_zone").as_string(), "Europe/Paris");
  const http::Response bad =
      put("/api/v1/users/u1/preferences",
          R"({"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Nowhere/X"}})");
  EXPECT_EQ(bad.result(), Status::bad_request);
  EXPECT_EQ(json(bad).at("error").at("field").as_string(), "quiet_hours.time_zone");

  const http::Response created =
      post(R"({"user_id": "u1", "channels": ["sms"], "priority": "critical",
      "category": "billing", "body": "x"})");
  const auto deliveries = json(created).at("deliveries").as_array();
  EXPECT_EQ(deliveries[0].at("status").as_string(), "skipped");
  EXPECT_EQ(deliveries[0].at("last_error").as_string(), "user opted out of sms");
}

TEST_F(ApiTest, ContactsAreValidatedAndKept) {
  EXPECT_EQ(put("/api/v1/users/u2/contacts", R"({"push_token": "t1"})").result(), Status::ok);
  EXPECT_EQ(
      put("/api/v1/users/u2/contacts", R"({"webhook_url": "https://example.com/hook"})").result(),
      Status::ok);
  const auto c = json(client_->get("/api/v1/users/u2/contacts"));
  EXPECT_EQ(c.at("push_token").as_string(), "t1");
  EXPECT_EQ(c.at("webhook_url").as_string(), "https://example.com/hook");
  const http::Response bad = put("/api/v1/users/u2/contacts", R"({"phone": "12"})");
  EXPECT_EQ(bad.result(), Status::bad_request);
  EXPECT_EQ(json(bad).at("error").at("field").as_string(), "phone");
}

TEST_F(ApiTest, FailedDeliveriesCanBeRetriedByHand) {
  email_->script({ScriptedProvider::permanent("550 mailbox unavailable")});
  const std::string id =
      id_of(post(R"({"user_id": "u1", "channels": ["email"], "category": "c", "body": "x"})"));
  clock_.advance(0s);
  const auto n = json(client_->get(fmt::format("/api/v1/notifications/{}", id)));
  const auto& d = n.at("deliveries").as_array()[0];
  EXPECT_EQ(d.at("status").as_string(), "failed");
  EXPECT_THAT(std::string(d.at("last_error").as_string()), HasSubstr("550 mailbox unavailable"));
  const std::string delivery_id(d.at("id").as_string());
  const auto dead = json(client_->get("/api/v1/dead-letters"));
  ASSERT_EQ(dead.at("dead_letters").as_array().size(), 1u);
  EXPECT_EQ(send(Method::post, fmt::format("/api/v1/deliveries/{}/retry", delivery_id)).result(),
            Status::accepted);
  EXPECT_EQ(send(Method::post, fmt::format("/api/v1/deliveries/{}/retry", delivery_id)).result(),
            Status::conflict);
  EXPECT_EQ(send(Method::post, "/api/v1/deliveries/dlv_nope/retry").result(), Status::not_found);
  clock_.advance(0s);
  EXPECT_EQ(json(client_->get(fmt::format("/api/v1/notifications/{}", id)))
                .at("deliveries")
                .as_array()[0]
                .at("status")
                .as_string(),
            "sent");
}

TEST_F(ApiTest, ServesMetricsAndHealth) {
  post(R"({"user_id": "u1", "channels": ["email"], "category": "c", "body": "x"})");
  clock_.advance(0s);
  EXPECT_EQ(client_->get("/healthz").result(), Status::ok);
  const http::Response metrics = client_->get("/metrics");
  EXPECT_THAT(metrics.body(),
              HasSubstr("keel_notifier_notifications_total{outcome=\"accepted\"} 1"));
  EXPECT_THAT(metrics.body(), HasSubstr("keel_notifier_deliveries{status=\"sent\"} 1"));
  EXPECT_THAT(metrics.body(), HasSubstr("keel_notifier_delivery_events_total{event=\"sent\"} 1"));
}

}  // namespace
}  // namespace keel::notifier
