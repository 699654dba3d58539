// HttpProvider (sms, push) against a real HTTP server on 127.0.0.1: what it sends, and how each
// answer is classified.
#include "case_studies/notification_system/channels/http_provider.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "case_studies/notification_system/channels/test_sinks.h"

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using testing::CannedResponse;
using testing::HttpSink;

Message sms() {
  return {.notification_id = "n1",
          .delivery_id = "d1",
          .idempotency_key = "n1:sms",
          .channel = Channel::sms,
          .user_id = "u1",
          .to = {.phone = "+33612345678"},
          .category = "security",
          .priority = "critical",
          .subject = "Code",
          .body = "Your code is 123456"};
}

class HttpProviderTest : public ::testing::Test {
 protected:
  HttpProvider provider(std::string token = "") {
    return HttpProvider({.url = sink.url("/sms"),
                         .bearer_token = std::move(token),
                         .timeout = 2s,
                         .allowed_private_hosts = {"127.0.0.1"}},
                        clock);
  }
  ManualClock clock;
  HttpSink sink;
};

TEST_F(HttpProviderTest, PostsJsonWithIdempotencyKeyAndBearerToken) {
  HttpProvider p = provider("t0k3n");
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, SendOutcome::sent) << r.error;
  EXPECT_EQ(r.provider_message_id, "gw-123");
  const auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 1U);
  const auto& q = requests[0];
  EXPECT_EQ(q.target, "/sms");
  EXPECT_EQ(q.headers.at("authorization"), "Bearer t0k3n");
  EXPECT_EQ(q.headers.at("idempotency-key"), "n1:sms");
  EXPECT_EQ(q.headers.at("content-type"), "application/json");
  const auto body = boost::json::parse(q.body).as_object();
  EXPECT_EQ(body.at("to"), "+33612345678");
  EXPECT_EQ(body.at("body"), "Your code is 123456");
  EXPECT_EQ(body.at("delivery_id"), "d1");
}

TEST_F(HttpProviderTest, NoAuthorizationHeaderWithoutAToken) {
  HttpProvider p = provider();
  ASSERT_EQ(p.send(sms()).outcome, SendOutcome::sent);
  EXPECT_FALSE(sink.requests().at(0).headers.contains("authorization"));
}

TEST_F(HttpProviderTest, SameKeyOnEveryRetry) {
  HttpProvider p = provider();
  sink.answer({.status = 503});
  Message m = sms();
  EXPECT_EQ(p.send(m).outcome, SendOutcome::transient);
  m.attempt = 2;
  EXPECT_EQ(p.send(m).outcome, SendOutcome::sent);
  const auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].headers.at("idempotency-key"), requests[1].headers.at("idempotency-key"));
}

struct StatusCase {
  int status;
  std::string retry_after;  // header value; "" = none
  SendOutcome outcome;
  std::optional<std::chrono::seconds> expected_retry_after;
};

class HttpStatusTest : public HttpProviderTest, public ::testing::WithParamInterface<StatusCase> {};

TEST_P(HttpStatusTest, ClassifiesTheAnswer) {
  const StatusCase& c = GetParam();
  CannedResponse response{.status = c.status, .body = R"({"error":"nope"})"};
  if (!c.retry_after.empty()) response.headers["Retry-After"] = c.retry_after;
  if (c.status / 100 == 3) response.headers["Location"] = "http://169.254.169.254/latest/meta-data";
  sink.answer(response);
  HttpProvider p = provider();
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, c.outcome) << c.status << ": " << r.error;
  EXPECT_EQ(r.retry_after, c.expected_retry_after) << c.status;
  EXPECT_THAT(r.error, HasSubstr(std::to_string(c.status)));
  EXPECT_EQ(sink.requests().size(), 1U) << "one request, no redirect followed";
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, HttpStatusTest,
    ::testing::Values(StatusCase{500, "", SendOutcome::transient, std::nullopt},
                      StatusCase{502, "", SendOutcome::transient, std::nullopt},
                      StatusCase{503, "7", SendOutcome::transient, 7s},
                      // ManualClock's wall time starts at Thu, 01 Jan 2026 00:00:00 GMT.
                      StatusCase{429, "Thu, 01 Jan 2026 00:00:30 GMT", SendOutcome::transient, 30s},
                      StatusCase{429, "", SendOutcome::transient, std::nullopt},
                      StatusCase{408, "", SendOutcome::transient, std::nullopt},
                      StatusCase{400, "", SendOutcome::permanent, std::nullopt},
                      StatusCase{401, "", SendOutcome::permanent, std::nullopt},
                      StatusCase{404, "", SendOutcome::permanent, std::nullopt},
                      StatusCase{422, "", SendOutcome::permanent, std::nullopt},
                      StatusCase{301, "", SendOutcome::permanent, std::nullopt},
                      StatusCase{307, "", SendOutcome::permanent, std::nullopt}));

TEST_F(HttpProviderTest, TokenEchoedByTheGatewayIsRedactedFromTheError) {
  sink.answer({.status = 401, .body = "bad token t0k3n"});
  HttpProvider p = provider("t0k3n");
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, Not(HasSubstr("t0k3n")));
  EXPECT_THAT(r.error, HasSubstr("[redacted]"));
}

TEST_F(HttpProviderTest, ConnectionRefusedIsTransient) {
  std::uint16_t closed = 0;
  {
    HttpSink gone;  // a port that was just closed
    closed = gone.port();
  }
  HttpProvider p({.url = fmt::format("http://127.0.0.1:{}/sms", closed),
                  .allowed_private_hosts = {"127.0.0.1"}},
                 clock);
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, SendOutcome::transient);
  EXPECT_THAT(r.error, HasSubstr("network error"));
}

TEST_F(HttpProviderTest, TimeoutIsTransient) {
  testing::SilentPort silent;
  HttpProvider p({.url = fmt::format("http://127.0.0.1:{}/sms", silent.port()),
                  .timeout = 300ms,
                  .allowed_private_hosts = {"127.0.0.1"}},
                 clock);
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, SendOutcome::transient);
  EXPECT_THAT(r.error, HasSubstr("imed out"));
}

TEST_F(HttpProviderTest, LoopbackEndpointIsRefusedUnlessAllowed) {
  HttpProvider p({.url = sink.url("/sms")}, clock);
  const SendResult r = p.send(sms());
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("non-public"));
  EXPECT_TRUE(sink.requests().empty());
}

TEST_F(HttpProviderTest, UserWithoutAPhoneNumberIsPermanent) {
  HttpProvider p = provider();
  Message m = sms();
  m.to.phone.clear();
  const SendResult r = p.send(m);
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("no phone number"));
  EXPECT_TRUE(sink.requests().empty());
}

}  // namespace
}  // namespace keel::notifier
