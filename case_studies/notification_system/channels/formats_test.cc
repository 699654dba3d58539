// What the providers put on the wire, without a network: channel names, the console line, the
// RFC 5322 message and its RFC 2047 headers, Retry-After, the webhook signature scheme.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <sstream>

#include "case_studies/notification_system/channels/console_provider.h"
#include "case_studies/notification_system/channels/http_provider.h"
#include "case_studies/notification_system/channels/internal/http_post.h"
#include "case_studies/notification_system/channels/smtp_provider.h"
#include "case_studies/notification_system/channels/webhook_provider.h"

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

Message sample() {
  return {.notification_id = "n1",
          .delivery_id = "d1",
          .idempotency_key = "key-1",
          .channel = Channel::email,
          .user_id = "u1",
          .to = {.email = "alice@example.com", .phone = "+33612345678", .push_token = "tok"},
          .category = "security",
          .priority = "critical",
          .subject = "Password reset",
          .body = "Use the link.\nIt expires in 1 hour."};
}

TEST(ChannelTest, NamesRoundTrip) {
  for (const Channel c : {Channel::email, Channel::sms, Channel::push, Channel::webhook}) {
    EXPECT_EQ(parse_channel(to_string(c)), c);
  }
  EXPECT_EQ(parse_channel("Email"), std::nullopt);
  EXPECT_EQ(parse_channel("console"), std::nullopt);
  EXPECT_EQ(parse_channel(""), std::nullopt);
}

TEST(ConsoleProviderTest, PrintsOneLinePerDelivery) {
  std::ostringstream out;
  ConsoleProvider console(out);
  Message m = sample();
  m.subject = "two\nlines \"quoted\"";
  const SendResult r = console.send(m);
  EXPECT_EQ(r.outcome, SendOutcome::sent);
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_THAT(text, HasSubstr("email to user u1 (alice@example.com)"));
  EXPECT_THAT(text, HasSubstr(R"("two\nlines \"quoted\"")"));
  EXPECT_THAT(text, HasSubstr("priority=critical category=security attempt=1 key=key-1"));
}

TEST(ConsoleProviderTest, NeverPrintsAWebhookUrl) {
  Message m = sample();
  m.channel = Channel::webhook;
  m.to.webhook_url = "https://hooks.example.com/T0/secret-token";
  EXPECT_THAT(ConsoleProvider::format_line(m), Not(HasSubstr("secret-token")));
}

TEST(EmailFormatTest, HasTheRfc5322Headers) {
  const SmtpProviderOptions options{
      .url = "smtp://127.0.0.1:25", .from = "noreply@example.com", .from_name = "Keel \"Alerts\""};
  const std::string text =
      SmtpProvider::format_message(sample(), options, ManualClock::kDefaultWallStart + 90s);
  EXPECT_THAT(text, HasSubstr("Date: Thu, 01 Jan 2026 00:01:30 +0000\r\n"));
  EXPECT_THAT(text, HasSubstr("From: \"Keel \\\"Alerts\\\"\" <noreply@example.com>\r\n"));
  EXPECT_THAT(text, HasSubstr("To: <alice@example.com>\r\n"));
  EXPECT_THAT(text, HasSubstr("Subject: Password reset\r\n"));
  EXPECT_THAT(text, HasSubstr("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: 7bit\r\n"));
  EXPECT_THAT(text, HasSubstr("\r\n\r\nUse the link.\r\nIt expires in 1 hour.\r\n"));
  EXPECT_EQ(text.find("\n"), text.find("\r\n") + 1) << "every line ends with CRLF";
}

TEST(EmailFormatTest, MessageIdIsStableAcrossRetriesAndDiffersBetweenDeliveries) {
  Message first = sample();
  Message retry = sample();
  retry.attempt = 3;
  Message other = sample();
  other.idempotency_key = "key-2";
  const std::string id = SmtpProvider::message_id(first, "noreply@example.com");
  EXPECT_EQ(id, SmtpProvider::message_id(retry, "noreply@example.com"));
  EXPECT_NE(id, SmtpProvider::message_id(other, "noreply@example.com"));
  EXPECT_THAT(id, ::testing::MatchesRegex("<[0-9a-f]{32}\\.keel@example\\.com>"));
}

TEST(EmailFormatTest, NonAsciiBodyIsBase64) {
  Message m = sample();
  m.body = "Votre code : 1234 — à bientôt";
  const std::string text = SmtpProvider::format_message(
      m, {.url = "smtp://x", .from = "a@example.com"}, ManualClock::kDefaultWallStart);
  EXPECT_THAT(text, HasSubstr("Content-Transfer-Encoding: base64\r\n"));
  EXPECT_THAT(text, Not(HasSubstr("bientôt")));
}

TEST(HeaderEncodingTest, PlainAsciiStaysAndControlsBecomeSpaces) {
  EXPECT_EQ(encode_header_text("Hello world"), "Hello world");
  EXPECT_EQ(encode_header_text("Bcc: evil\r\nX: y"), "Bcc: evil  X: y") << "no header injection";
}

TEST(HeaderEncodingTest, NonAsciiBecomesFoldedEncodedWords) {
  const std::string subject =
      "Réinitialisation de votre mot de passe — 日本語のテキストもここに含まれています — ünïcödé";
  const std::string encoded = encode_header_text(subject);
  EXPECT_TRUE(encoded.starts_with("=?UTF-8?B?")) << encoded;
  std::istringstream lines(encoded);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    EXPECT_LE(line.size(), 76U) << line;
    EXPECT_THAT(line, ::testing::MatchesRegex(" ?=\\?UTF-8\\?B\\?[A-Za-z0-9+/=]+\\?="));
  }
  EXPECT_GT(count, 1) << "a long subject is folded";
}

TEST(EmailAddressTest, AcceptsPlainAddressesOnly) {
  EXPECT_TRUE(is_valid_email_address("alice@example.com"));
  EXPECT_TRUE(is_valid_email_address("a.b+tag@sub.example.co.uk"));
  for (const char* bad : {"", "alice", "@example.com", "alice@", "alice @example.com",
                          "<alice@example.com>", "a@b,c@d", "alice@example.com\r\nRCPT TO:<x@y>",
                          "\"quoted\"@example.com", "élise@example.com"}) {
    EXPECT_FALSE(is_valid_email_address(bad)) << bad;
  }
}

TEST(RetryAfterTest, SecondsAndHttpDates) {
  const WallTime now = ManualClock::kDefaultWallStart;  // Thu, 01 Jan 2026 00:00:00 GMT
  EXPECT_EQ(internal::parse_retry_after("120", now), 120s);
  EXPECT_EQ(internal::parse_retry_after(" 0 ", now), 0s);
  EXPECT_EQ(internal::parse_retry_after("Thu, 01 Jan 2026 00:02:05 GMT", now), 125s);
  EXPECT_EQ(internal::parse_retry_after("Thursday, 01-Jan-26 00:00:30 GMT", now), 30s);
  EXPECT_EQ(internal::parse_retry_after("Thu Jan  1 00:01:00 2026", now), 60s);
  EXPECT_EQ(internal::parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now), 0s) << "past";
  EXPECT_EQ(internal::parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(internal::parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(internal::parse_retry_after("", now), std::nullopt);
}

TEST(HeaderSafeKeyTest, KeepsPrintableKeysAndHashesOthers) {
  EXPECT_EQ(internal::header_safe_key("notif-42:email"), "notif-42:email");
  const std::string hashed = internal::header_safe_key("evil\r\nX-Injected: 1");
  EXPECT_EQ(hashed.size(), 64U);
  EXPECT_THAT(hashed, Not(HasSubstr("\r")));
}

TEST(HttpProviderTest, BodyCarriesTheChannelsContact) {
  Message m = sample();
  m.channel = Channel::sms;
  const auto body = boost::json::parse(HttpProvider::request_body(m)).as_object();
  EXPECT_EQ(body.at("to"), "+33612345678");
  EXPECT_EQ(body.at("channel"), "sms");
  EXPECT_EQ(body.at("body").as_string(), m.body);
  m.channel = Channel::push;
  EXPECT_EQ(boost::json::parse(HttpProvider::request_body(m)).at("to"), "tok");
}

TEST(HttpProviderTest, RejectsBadOptionsWithoutShowingTheToken) {
  EXPECT_THROW(HttpProvider({.url = "ftp://example.com/sms"}), std::invalid_argument);
  EXPECT_THROW(HttpProvider({.url = "http://user:pw@example.com/sms"}), std::invalid_argument);
  try {
    HttpProvider({.url = "https://example.com/sms", .bearer_token = "s3cret\r\nX-Evil: 1"});
    FAIL() << "a token with CR LF must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cret")));
  }
}

TEST(WebhookSignatureTest, SignsTimestampDotBody) {
  const WallTime at = ManualClock::kDefaultWallStart;
  const std::string header = sign_webhook("whsec", R"({"a":1})", at);
  // Computed independently: echo -n '1767225600.{"a":1}' | openssl dgst -sha256 -hmac whsec
  EXPECT_EQ(header,
            "t=1767225600,v1=1d69bcb084beb6eb528786cc5d022925538f95bf5a26c0646f7223c252991404");
}

TEST(WebhookSignatureTest, VerifiesWhatWasSigned) {
  const WallTime at = ManualClock::kDefaultWallStart;
  const std::string body = R"({"delivery_id":"d1"})";
  const std::string header = sign_webhook("whsec", body, at);
  EXPECT_TRUE(verify_webhook_signature("whsec", header, body, at + 10s));
  EXPECT_FALSE(verify_webhook_signature("other", header, body, at)) << "wrong secret";
  EXPECT_FALSE(verify_webhook_signature("whsec", header, body + " ", at)) << "altered body";
  EXPECT_FALSE(verify_webhook_signature("whsec", header, body, at + 6min)) << "replayed late";
  EXPECT_FALSE(verify_webhook_signature("whsec", header, body, at - 6min)) << "from the future";
  EXPECT_TRUE(verify_webhook_signature("whsec", header, body, at + 6min, 10min)) << "tolerance";
}

TEST(WebhookSignatureTest, AcceptsAnyOfSeveralSignaturesDuringRotation) {
  const WallTime at = ManualClock::kDefaultWallStart;
  const std::string body = "{}";
  const std::string v1_new = sign_webhook("new", body, at).substr(16);
  const std::string v1_old = sign_webhook("old", body, at).substr(16);
  const std::string header = fmt::format("t=1767225600,v1={},v1={}", v1_new, v1_old);
  EXPECT_TRUE(verify_webhook_signature("old", header, body, at));
  EXPECT_TRUE(verify_webhook_signature("new", header, body, at));
  EXPECT_FALSE(verify_webhook_signature("neither", header, body, at));
}

TEST(WebhookSignatureTest, RejectsMalformedHeaders) {
  const WallTime at = ManualClock::kDefaultWallStart;
  const std::string good = sign_webhook("k", "{}", at);
  const std::string v1 = good.substr(13);  // "v1=<hex>"
  for (const std::string& header :
       {std::string(), std::string("garbage"), v1, std::string("t=1767225600"),
        fmt::format("t=abc,{}", v1), fmt::format("t=1767225600,t=1767225600,{}", v1),
        fmt::format("t=-1,{}", v1), fmt::format("t=1767225600,v1={}", std::string(64, '0')),
        std::string("t=1767225600,v1=")}) {
    EXPECT_FALSE(verify_webhook_signature("k", header, "{}", at)) << header;
  }
  EXPECT_TRUE(verify_webhook_signature("k", fmt::format(" t=1767225600 , {}", v1), "{}", at))
      << "spaces";
}

}  // namespace
}  // namespace keel::notifier
