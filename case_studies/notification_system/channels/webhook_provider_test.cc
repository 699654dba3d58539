// WebhookProvider against a real HTTP server on 127.0.0.1: the signed POST as a receiver sees it,
// and the SSRF rules (refused when the address is not allowed, no redirects, http(s) only,
// payload limit).
#include "case_studies/notification_system/channels/webhook_provider.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "case_studies/notification_system/channels/test_sinks.h"

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using testing::HttpSink;

constexpr const char* kSecret = "whsec_test";

class WebhookProviderTest : public ::testing::Test {
 protected:
  Message hook(std::string url) {
    return {.notification_id = "n1",
            .delivery_id = "d1",
            .idempotency_key = "n1:webhook",
            .channel = Channel::webhook,
            .user_id = "u1",
            .to = {.webhook_url = std::move(url)},
            .category = "billing",
            .priority = "normal",
            .subject = "Invoice",
            .body = "Your invoice is ready"};
  }
  WebhookProvider provider(std::vector<std::string> allowed = {"127.0.0.1"}) {
    return WebhookProvider(
        {.secret = kSecret, .timeout = 2s, .allowed_private_hosts = std::move(allowed)}, clock);
  }

  ManualClock clock{TimePoint{}, ManualClock::kDefaultWallStart + 3600s};
  HttpSink sink;
};

TEST_F(WebhookProviderTest, PostsASignedPayloadTheReceiverCanVerify) {
  WebhookProvider p = provider();
  const SendResult r = p.send(hook(sink.url("/hook?token=abc")));
  ASSERT_EQ(r.outcome, SendOutcome::sent) << r.error;
  const auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 1U);
  const auto& q = requests[0];
  EXPECT_EQ(q.target, "/hook?token=abc");
  EXPECT_EQ(q.headers.at("idempotency-key"), "n1:webhook");
  EXPECT_EQ(q.headers.at("x-keel-delivery"), "d1");
  const std::string& signature = q.headers.at("x-keel-signature");
  EXPECT_TRUE(signature.starts_with("t=1767229200,v1=")) << "signed at the clock's wall time";
  EXPECT_TRUE(verify_webhook_signature(kSecret, signature, q.body, clock.wall_now()));
  EXPECT_FALSE(verify_webhook_signature("wrong", signature, q.body, clock.wall_now()));
  const auto payload = boost::json::parse(q.body).as_object();
  EXPECT_EQ(payload.at("delivery_id"), "d1");
  EXPECT_EQ(payload.at("body"), "Your invoice is ready");
  EXPECT_EQ(payload.at("timestamp"), 1767229200);
}

TEST_F(WebhookProviderTest, LoopbackIsRefusedWhenNotAllowedAndNothingIsSent) {
  WebhookProvider p = provider({});
  for (const std::string& url :
       {sink.url("/hook"), fmt::format("http://[::ffff:127.0.0.1]:{}/hook", sink.port()),
        fmt::format("http://localhost:{}/hook", sink.port()),
        fmt::format("http://2130706433:{}/hook", sink.port()),  // 127.0.0.1 as one number
        fmt::format("http://0x7f.1:{}/hook", sink.port())}) {
    const SendResult r = p.send(hook(url));
    EXPECT_EQ(r.outcome, SendOutcome::permanent) << url;
    EXPECT_THAT(r.error, HasSubstr("refused")) << url;
    EXPECT_THAT(r.error, HasSubstr("non-public")) << url;
  }
  EXPECT_TRUE(sink.requests().empty());
}

TEST_F(WebhookProviderTest, AnAllowedHostNameIsPinnedToWhatWasChecked) {
  WebhookProvider p = provider({"localhost"});
  const SendResult r = p.send(hook(fmt::format("http://localhost:{}/hook", sink.port())));
  EXPECT_EQ(r.outcome, SendOutcome::sent) << r.error;
  ASSERT_EQ(sink.requests().size(), 1U);
  EXPECT_EQ(sink.requests()[0].headers.at("host"), fmt::format("localhost:{}", sink.port()))
      << "the Host header keeps the name while the connection goes to the checked address";
}

TEST_F(WebhookProviderTest, CloudMetadataAddressIsRefused) {
  WebhookProvider p = provider();
  const SendResult r = p.send(hook("http://169.254.169.254/latest/meta-data/"));
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("link-local"));
}

TEST_F(WebhookProviderTest, RedirectsAreNotFollowed) {
  sink.answer({.status = 302, .headers = {{"Location", "http://169.254.169.254/"}}});
  WebhookProvider p = provider();
  const SendResult r = p.send(hook(sink.url("/hook")));
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("redirects are refused"));
  EXPECT_EQ(sink.requests().size(), 1U);
}

TEST_F(WebhookProviderTest, OnlyHttpAndHttpsWithoutCredentials) {
  WebhookProvider p = provider();
  for (const std::string& url :
       {std::string("file:///etc/passwd"), std::string("ftp://127.0.0.1/x"),
        std::string("gopher://127.0.0.1:70/"), fmt::format("http://u:p@127.0.0.1:{}/", sink.port()),
        std::string("not a url"), std::string("http://")}) {
    const SendResult r = p.send(hook(url));
    EXPECT_EQ(r.outcome, SendOutcome::permanent) << url;
    EXPECT_THAT(r.error, HasSubstr("bad URL")) << url;
  }
  EXPECT_TRUE(sink.requests().empty());
}

TEST_F(WebhookProviderTest, OversizedPayloadIsPermanentAndNotSent) {
  WebhookProvider p(
      {.secret = kSecret, .max_payload_bytes = 1024, .allowed_private_hosts = {"127.0.0.1"}},
      clock);
  Message m = hook(sink.url("/hook"));
  m.body = std::string(2000, 'x');
  const SendResult r = p.send(m);
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("exceeds the limit of 1024 bytes"));
  EXPECT_TRUE(sink.requests().empty());
}

TEST_F(WebhookProviderTest, ReceiverErrorsAreClassified) {
  sink.answer({.status = 500});
  sink.answer({.status = 410});
  WebhookProvider p = provider();
  EXPECT_EQ(p.send(hook(sink.url("/hook"))).outcome, SendOutcome::transient);
  EXPECT_EQ(p.send(hook(sink.url("/hook"))).outcome, SendOutcome::permanent);
}

TEST_F(WebhookProviderTest, UserWithoutAWebhookUrlIsPermanent) {
  WebhookProvider p = provider();
  const SendResult r = p.send(hook(""));
  EXPECT_EQ(r.outcome, SendOutcome::permanent);
  EXPECT_THAT(r.error, HasSubstr("no webhook URL"));
}

TEST_F(WebhookProviderTest, UnresolvableHostIsTransient) {
  WebhookProvider p = provider();
  const SendResult r = p.send(hook("https://no-such-host.invalid/hook"));
  EXPECT_EQ(r.outcome, SendOutcome::transient);
  EXPECT_THAT(r.error, HasSubstr("cannot resolve"));
}

}  // namespace
}  // namespace keel::notifier
