// keel-notifier under abuse: the real binary on SQLite in a temp dir, its providers pointed at
// sinks run by the test on 127.0.0.1 (a keel::http server for webhooks and the SMS gateway,
// testdata/smtp_sink.py for email).
//   - every webhook carries a signature a receiver can check with nothing but OpenSSL and the
//     shared secret, over the exact bytes received; another secret or another body fails it;
//   - request bodies and fields have size limits: 413 for a body over the server's limit, 400
//     naming the field for an over-long field, and nothing is queued;
//   - a user over the per-user rate limit is held (scheduled, as docs/notification_system.md
//     says), another user is not;
//   - provider credentials (an SMTP password, an HTTP gateway's API key) appear nowhere the
//     service writes or answers: its whole log, /metrics, notifications, dead letters.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/abuse/service.h"
#include "tests/support/free_port.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using http::Method;
using http::Status;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// What a receiver got: the raw body and the headers that matter.
struct Received {
  std::string path;
  std::string body;
  std::string signature;
  std::string authorization;
};

// An HTTP receiver on 127.0.0.1 for webhooks and the SMS gateway. It answers 200, unless the
// body asks otherwise: "please-401" gets a 401 and "please-500" a 500, each echoing the request's
// Authorization header in its error body, as careless gateways do.
class Sink {
 public:
  Sink() {
    http::Router router;
    for (const char* path : {"/hook", "/sms"}) {
      router.add(Method::post, path, [this](http::Request& request) { return take(request); });
    }
    server_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{.threads = 4});
    server_->start();
  }
  ~Sink() { server_->stop(); }
  std::uint16_t port() const { return server_->port(); }
  std::vector<Received> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  std::size_t count(std::string_view needle) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const Received& r : received_) n += r.body.find(needle) != std::string::npos ? 1u : 0u;
    return n;
  }

 private:
  http::Response take(http::Request& request) {
    Received r{
        .path = std::string(request.path()),
        .body = request.body(),
        .signature = std::string(request.header("X-Keel-Signature").value_or("")),
        .authorization = std::string(request.header(http::Field::authorization).value_or(""))};
    {
      std::lock_guard lock(mu_);
      received_.push_back(r);
    }
    const std::string echo = fmt::format("bad credentials: {}", r.authorization);
    if (r.body.find("please-401") != std::string::npos) {
      return http::error_response(Status::unauthorized, "unauthorized", echo);
    }
    if (r.body.find("please-500") != std::string::npos) {
      return http::error_response(Status::internal_server_error, "internal", echo);
    }
    return http::json_response(Status::ok, boost::json::object{{"id", "gw-1"}});
  }

  mutable std::mutex mu_;
  std::vector<Received> received_;
  std::unique_ptr<http::Server> server_;
};

// HMAC-SHA256(secret, t + "." + body) in hex, computed here with OpenSSL alone.
std::string hmac_hex(std::string_view secret, std::string_view t, std::string_view body) {
  const std::string message = fmt::format("{}.{}", t, body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// The receiver's check (docs/notification_channels.md, "The webhook signature"): one t, one or
// more v1, one v1 equal (in constant time) to the HMAC of "t.body".
bool signature_holds(std::string_view secret, std::string_view header, std::string_view body) {
  std::string t;
  std::vector<std::string> v1;
  std::size_t start = 0;
  while (start <= header.size()) {
    std::size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view item = header.substr(start, end - start);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos) {
      if (item.substr(0, eq) == "t") {
        if (!t.empty()) return false;
        t = std::string(item.substr(eq + 1));
      } else if (item.substr(0, eq) == "v1") {
        v1.emplace_back(item.substr(eq + 1));
      }
    }
    start = end + 1;
  }
  if (t.empty() || v1.empty()) return false;
  const std::string expected = hmac_hex(secret, t, body);
  for (const std::string& given : v1) {
    if (given.size() == expected.size() &&
        CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0) {
      return true;
    }
  }
  return false;
}

class NotifierAbuseTest : public ::testing::Test {
 protected:
  void start(const std::string& config_json) {
    std::ofstream(config_) << config_json;
    service_ = Service::start({KEEL_NOTIFIER_BINARY, "--db", (dir_.path() / "notifier.db").string(),
                               "--config", config_.string()},
                              dir_.path() / "notifier.log");
  }

  http::Response call(Method method, const std::string& target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Client client("127.0.0.1", service_.port);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return client.request(method, target, std::move(body), headers);
  }

  void put_contacts(const std::string& user, const boost::json::object& contacts) {
    const http::Response r = call(Method::put, fmt::format("/api/v1/users/{}/contacts", user),
                                  boost::json::serialize(contacts));
    ASSERT_EQ(r.result(), Status::ok) << r.body();
  }

  // Submits a notification and returns its id.
  std::string notify(const std::string& user, const std::string& channel, const std::string& body,
                     const std::string& priority = "normal") {
    const http::Response r =
        call(Method::post, "/api/v1/notifications",
             boost::json::serialize(boost::json::object{{"user_id", user},
                                                        {"channels", boost::json::array{channel}},
                                                        {"priority", priority},
                                                        {"category", "billing"},
                                                        {"subject", "hello"},
                                                        {"body", body}}));
    EXPECT_EQ(r.result(), Status::accepted) << r.body();
    if (r.result() != Status::accepted) return "";
    return std::string(boost::json::parse(r.body()).at("id").as_string());
  }

  boost::json::object notification(const std::string& id) {
    const http::Response r = call(Method::get, fmt::format("/api/v1/notifications/{}", id));
    EXPECT_EQ(r.result(), Status::ok) << r.body();
    return boost::json::parse(r.body()).as_object();
  }
  std::string delivery_status(const std::string& id) {
    return std::string(notification(id).at("deliveries").at(0).at("status").as_string());
  }

  TempDir dir_{"keel-notifier-abuse"};
  std::filesystem::path config_ = dir_.path() / "notifier.json";
  Service service_;
  Sink sink_;
};

TEST_F(NotifierAbuseTest, EveryWebhookIsSignedOverTheExactBodyWithTheSharedSecret) {
  const std::string secret = "whsec-abuse-test-0f3a9c";
  start(fmt::format(
      R"j({{"providers": {{"webhook": {{"primary": {{"type": "webhook", "secret": "{}"}}}}}},
                         "allowed_private_hosts": ["127.0.0.1"],
                         "rate_limit": {{"per_second": 100000, "burst": 100000}},
                         "poll_milliseconds": 50}})j",
      secret));
  put_contacts("u1", {{"webhook_url", fmt::format("http://127.0.0.1:{}/hook", sink_.port())}});
  // Bodies whose bytes a careless receiver would change by re-encoding: escapes, non-ASCII,
  // a JSON-looking text, a long one.
  const std::vector<std::string> bodies = {"plain",
                                           "quote \" backslash \\ slash /",
                                           "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x94",
                                           "{\"type\":\"forged\",\"amount\":1000000}",
                                           "tab\tnewline\nend",
                                           std::string(8000, 'x')};
  std::map<std::string, std::string> ids;  // notification id -> body
  for (const std::string& body : bodies) ids[notify("u1", "webhook", body)] = body;
  ASSERT_TRUE(wait_until([&] { return sink_.received().size() >= bodies.size(); }, 20s))
      << "webhooks received: " << sink_.received().size() << "\n"
      << service_.log_text();

  int verified = 0;
  for (const Received& r : sink_.received()) {
    ASSERT_EQ(r.path, "/hook");
    EXPECT_TRUE(signature_holds(secret, r.signature, r.body))
        << "signature " << r.signature << " does not verify over " << r.body;
    EXPECT_FALSE(signature_holds("whsec-another-secret", r.signature, r.body));
    EXPECT_FALSE(signature_holds(secret.substr(0, secret.size() - 1), r.signature, r.body));
    std::string tampered = r.body;
    tampered[tampered.size() / 2] ^= 1;
    EXPECT_FALSE(signature_holds(secret, r.signature, tampered)) << "a changed body verified";
    // A replay with a new timestamp does not verify: t is part of what is signed.
    const std::size_t v1 = r.signature.find("v1=");
    ASSERT_NE(v1, std::string::npos) << r.signature;
    EXPECT_FALSE(signature_holds(secret, fmt::format("t=1,{}", r.signature.substr(v1)), r.body));
    // The body is the notification it says it is.
    const boost::json::object payload = boost::json::parse(r.body).as_object();
    const std::string id(payload.at("notification_id").as_string());
    ASSERT_TRUE(ids.count(id)) << id;
    EXPECT_EQ(payload.at("body").as_string(), ids[id]);
    ++verified;
  }
  EXPECT_EQ(verified, static_cast<int>(bodies.size()));
  RecordProperty("verified", verified);
}

TEST_F(NotifierAbuseTest, OversizedBodiesAndFieldsAreRefusedAndNothingIsQueued) {
  start(R"({"poll_milliseconds": 50})");
  // Over the server's 64 KiB body limit.
  const http::Response huge = call(
      Method::post, "/api/v1/notifications",
      fmt::format(R"({{"user_id": "u1", "channels": ["email"], "category": "c", "body": "{}"}})",
                  std::string(100 * 1024, 'x')));
  EXPECT_EQ(huge.result(), Status::payload_too_large) << huge.body();

  // Each field one byte over its limit (model.h), in a body the server accepts.
  const auto request = [](const std::string& field, std::size_t bytes) {
    boost::json::object body{{"user_id", "u1"},
                             {"channels", boost::json::array{"email"}},
                             {"category", "billing"},
                             {"body", "hi"}};
    body[field] = std::string(bytes, 'a');
    return boost::json::serialize(body);
  };
  const std::vector<std::pair<std::string, std::size_t>> over = {
      {"user_id", 129},  {"category", 65},         {"subject", 999}, {"body", 32 * 1024 + 1},
      {"template", 129}, {"idempotency_key", 256}, {"priority", 17}, {"send_at", 65}};
  for (const auto& [field, bytes] : over) {
    const http::Response r = call(Method::post, "/api/v1/notifications", request(field, bytes));
    ASSERT_EQ(r.result(), Status::bad_request) << field << ": " << r.body();
    const auto error = boost::json::parse(r.body()).at("error");
    EXPECT_EQ(error.at("field").as_string(), field) << r.body();
    EXPECT_EQ(error.at("code").as_string(), "invalid_request");
  }
  const http::Response header = call(Method::post, "/api/v1/notifications", request("body", 2),
                                     {{"Idempotency-Key", std::string(256, 'k')}});
  EXPECT_EQ(header.result(), Status::bad_request) << header.body();
  EXPECT_EQ(boost::json::parse(header.body()).at("error").at("field").as_string(),
            "Idempotency-Key");

  // Contacts: over-long values are refused naming the field.
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"phone", fmt::format("+{}", std::string(40, '1'))},
           {"push_token", std::string(4097, 't')},
           {"webhook_url", fmt::format("https://example.com/{}", std::string(60 * 1024, 'a'))}}) {
    const http::Response r = call(Method::put, "/api/v1/users/u1/contacts",
                                  boost::json::serialize(boost::json::object{{field, value}}));
    EXPECT_EQ(r.result(), Status::bad_request) << field << " of " << value.size() << " bytes";
    if (r.result() == Status::bad_request) {
      EXPECT_EQ(boost::json::parse(r.body()).at("error").at("field").as_string(), field);
    }
  }
  // A user id in the path over its limit.
  EXPECT_EQ(
      call(Method::get, fmt::format("/api/v1/users/{}/contacts", std::string(129, 'u'))).result(),
      Status::bad_request);

  // Nothing of the above was stored: u1 has no contacts, no notification exists, and the
  // service still takes a valid request.
  const boost::json::value contacts =
      boost::json::parse(call(Method::get, "/api/v1/users/u1/contacts").body());
  EXPECT_EQ(contacts.at("email").as_string(), "") << contacts;
  EXPECT_EQ(contacts.at("webhook_url").as_string(), "") << contacts;
  EXPECT_EQ(boost::json::parse(call(Method::get, "/api/v1/dead-letters").body())
                .at("dead_letters")
                .as_array()
                .size(),
            0u);
  EXPECT_FALSE(notify("u1", "email", "still works").empty());
}

// RFC 5321 (4.5.3.1) bounds an address: a local part of at most 64 bytes, at most 254 in all.
// Found by this test: valid_email (case_studies/notification_system/preferences.cc) has no
// length limit, so an address of any size up to the body limit is stored, and refused by the
// SMTP provider only at send time.
TEST_F(NotifierAbuseTest, AnOverLongEmailAddressIsRefusedNamingTheField) {
  start(R"({"poll_milliseconds": 50})");
  for (const std::string& email : {fmt::format("{}@example.com", std::string(65, 'a')),
                                   fmt::format("a@{}.example.com", std::string(250, 'd')),
                                   fmt::format("{}@example.com", std::string(60 * 1024, 'a'))}) {
    const http::Response r = call(Method::put, "/api/v1/users/u1/contacts",
                                  boost::json::serialize(boost::json::object{{"email", email}}));
    EXPECT_EQ(r.result(), Status::bad_request) << "an email of " << email.size() << " bytes";
    if (r.result() == Status::bad_request) {
      EXPECT_EQ(boost::json::parse(r.body()).at("error").at("field").as_string(), "email");
    }
  }
  EXPECT_EQ(boost::json::parse(call(Method::get, "/api/v1/users/u1/contacts").body())
                .at("email")
                .as_string(),
            "");
}

TEST_F(NotifierAbuseTest, AUserOverTheRateLimitIsHeldAndAnotherUserIsNot) {
  // 3 deliveries per user, then one more every 1,000 s: the rest are held.
  start(fmt::format(
      R"j({{"providers": {{"sms": {{"primary": {{"type": "http", "url": "http://127.0.0.1:{}/sms"}}}}}},
                         "allowed_private_hosts": ["127.0.0.1"],
                         "rate_limit": {{"per_second": 0.001, "burst": 3}},
                         "poll_milliseconds": 50}})j",
      sink_.port()));
  put_contacts("flood", {{"phone", "+33612345678"}});
  put_contacts("calm", {{"phone", "+33612345679"}});
  std::vector<std::string> flood;
  for (int i = 0; i < 6; ++i) flood.push_back(notify("flood", "sms", fmt::format("flood-{}", i)));
  std::vector<std::string> calm;
  for (int i = 0; i < 2; ++i) calm.push_back(notify("calm", "sms", fmt::format("calm-{}", i)));

  std::size_t held = 0;
  const bool settled = wait_until(
      [&] {
        held = 0;
        for (const std::string& id : flood) {
          const boost::json::object n = notification(id);
          const auto& d = n.at("deliveries").at(0).as_object();
          held += d.at("status").as_string() == "scheduled" &&
                          std::string_view(d.at("last_error").as_string()).find("rate limit") !=
                              std::string_view::npos
                      ? 1u
                      : 0u;
        }
        // The calm user's deliveries: sent as recorded by the notifier, which completes a
        // delivery after the sink has counted it.
        const bool calm_sent = std::all_of(calm.begin(), calm.end(), [&](const std::string& id) {
          return delivery_status(id) == "sent";
        });
        return sink_.count("flood-") >= 3 && calm_sent && held >= 3;
      },
      20s);
  ASSERT_TRUE(settled) << "flood sent " << sink_.count("flood-") << ", held " << held
                       << "; calm sent " << sink_.count("calm-") << "\n"
                       << service_.log_text();
  EXPECT_EQ(sink_.count("flood-"), 3u) << "the limited user got more than the burst";
  EXPECT_EQ(held, 3u);
  EXPECT_EQ(sink_.count("calm-"), 2u);
}

TEST_F(NotifierAbuseTest, ProviderCredentialsAppearNowhere) {
  const std::string password = "SMTP-PASSW0RD-9d2f6b1e";
  const std::string api_key = "GW-API-KEY-41c7e0aa";
  const std::filesystem::path mail = dir_.path() / "mail";
  std::filesystem::create_directories(mail);
  // Throws (failing the test) with the sink's log when it cannot start.
  const LaunchedServer smtp = launch_on_free_port({
      .name = "smtp_sink.py",
      .argv =
          [&](std::uint16_t port) {
            return std::vector<std::string>{KEEL_SMTP_SINK,
                                            "--port",
                                            std::to_string(port),
                                            "--out",
                                            mail.string(),
                                            "--auth",
                                            fmt::format("notifier:{}", password),
                                            "--reject",
                                            "bad@example.com=550 5.1.1 No such mailbox"};
          },
      .log_file = dir_.path() / "smtp.log",
      .run_as_user = std::nullopt,
      .ready =
          [](std::uint16_t port) {
            try {
              RawConnection probe(port);
              return true;
            } catch (const std::exception&) {
              return false;
            }
          },
  });
  const std::uint16_t smtp_port = smtp.port;

  start(fmt::format(
      R"j({{"providers": {{
             "email": {{"primary": {{"type": "smtp", "url": "smtp://127.0.0.1:{}", "from": "noreply@example.com",
                                    "username": "notifier", "password": "{}", "timeout_ms": 5000}}}},
             "sms": {{"primary": {{"type": "http", "url": "http://127.0.0.1:{}/sms", "token": "{}"}}}}}},
           "allowed_private_hosts": ["127.0.0.1"],
           "retry": {{"max_attempts": 2, "initial_seconds": 0.05, "max_delay_seconds": 0.1}},
           "rate_limit": {{"per_second": 100000, "burst": 100000}},
           "poll_milliseconds": 50}})j",
      smtp_port, password, sink_.port(), api_key));
  put_contacts("ok", {{"email", "ok@example.com"}, {"phone", "+33612345678"}});
  put_contacts("bad", {{"email", "bad@example.com"}, {"phone", "+33612345679"}});
  const std::vector<std::string> ids = {
      notify("ok", "email", "mail that goes through"), notify("bad", "email", "mail refused 550"),
      notify("ok", "sms", "sms that goes through"),    notify("ok", "sms", "please-401"),
      notify("ok", "sms", "please-500 then give up"),
  };
  const auto terminal = [&](const std::string& id) {
    const std::string status = delivery_status(id);
    return status == "sent" || status == "failed";
  };
  ASSERT_TRUE(wait_until([&] { return std::all_of(ids.begin(), ids.end(), terminal); }, 30s))
      << service_.log_text();
  EXPECT_EQ(delivery_status(ids[0]), "sent");
  EXPECT_EQ(delivery_status(ids[1]), "failed");
  EXPECT_EQ(delivery_status(ids[2]), "sent");
  EXPECT_EQ(delivery_status(ids[3]), "failed");
  EXPECT_EQ(delivery_status(ids[4]), "failed");
  // The SMTP server took the mail after AUTH with the password (so it was in play).
  std::string accepted_mail;
  for (const auto& entry : std::filesystem::directory_iterator(mail)) {
    if (entry.path().extension() == ".json") accepted_mail += tail_of_file(entry.path(), 100000);
  }
  EXPECT_THAT(accepted_mail, HasSubstr("\"authenticated_as\": \"notifier\""));
  // The gateway did get the key (so it was in play), and echoed it back in its errors.
  ASSERT_FALSE(sink_.received().empty());
  EXPECT_EQ(sink_.received().front().authorization, fmt::format("Bearer {}", api_key));

  // Everything the service says, to its log and to clients.
  std::string everything = service_.log_text();
  everything += call(Method::get, "/metrics").body();
  everything += call(Method::get, "/api/v1/dead-letters").body();
  for (const std::string& id : ids)
    everything += call(Method::get, fmt::format("/api/v1/notifications/{}", id)).body();
  for (const char* user : {"ok", "bad"}) {
    everything += call(Method::get, fmt::format("/api/v1/users/{}/contacts", user)).body();
    everything += call(Method::get, fmt::format("/api/v1/users/{}/preferences", user)).body();
  }
  service_.process.stop(SIGTERM, 10s);  // what it logs on the way out too
  everything += service_.log_text();
  // AUTH PLAIN sends base64("\0user\0password"): that form must not leak either.
  const std::string plain = std::string("\0notifier\0", 10) + password;
  std::string auth_plain(4 * ((plain.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(auth_plain.data()),
                  reinterpret_cast<const unsigned char*>(plain.data()),
                  static_cast<int>(plain.size()));
  for (const std::string& secret : {password, api_key, auth_plain}) {
    EXPECT_EQ(everything.find(secret), std::string::npos)
        << "found " << secret << " in:\n"
        << everything.substr(everything.find(secret) > 300 ? everything.find(secret) - 300 : 0,
                             600);
  }
  RecordProperty("bytes_checked", static_cast<int>(everything.size()));
}

}  // namespace
}  // namespace keel::testing
