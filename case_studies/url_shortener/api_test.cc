// The shortener's HTTP API over real loopback HTTP (keel::http::Server and Client), on SQLite,
// with a manual clock for expiry and rate limits.
#include "case_studies/url_shortener/api.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <chrono>

#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::shortener {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using http::Method;
using http::Status;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(ApiOptions options) {
    server_.reset();
    options.admin_token = "s3cret";
    options.clock = &clock_;
    api_ = std::make_unique<Api>(shortener_, bus_, analytics_, options);
    http::Router router;
    api_->add_routes(router);
    server_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{});
    server_->start();
    client_ = std::make_unique<http::Client>("127.0.0.1", server_->port());
  }
  http::Response post(const std::string& body) {
    return client_->request(Method::post, "/api/v1/links", body,
                            {{"Content-Type", "application/json"}});
  }
  boost::json::object json(const http::Response& r) { return boost::json::parse(r.body()).as_object(); }

  keel::testing::TempDir dir_{"keel-shortener-api"};
  ManualClock clock_;
  SqliteLinkStore store_{(dir_.path() / "links.db").string()};
  Shortener shortener_{store_, {.base_url = "https://sho.rt", .code_key = "k", .clock = &clock_}};
  pubsub::EventBus bus_;
  ClickAnalytics analytics_{bus_};
  std::unique_ptr<Api> api_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(ApiTest, CreatesThenReturnsTheSameLinkForTheSameUrl) {
  const http::Response created = post(R"({"url": "https://Example.com"})");
  EXPECT_EQ(created.result(), Status::created);
  const auto link = json(created);
  const std::string code(link.at("code").as_string());
  EXPECT_TRUE(is_code(code));
  EXPECT_EQ(link.at("short_url").as_string(), fmt::format("https://sho.rt/{}", code));
  EXPECT_EQ(link.at("url").as_string(), "https://example.com/");
  EXPECT_EQ(link.at("created_at").as_string(), "2026-01-01T00:00:00Z");
  EXPECT_TRUE(link.at("expires_at").is_null());

  const http::Response again = post(R"({"url": "https://example.com/"})");
  EXPECT_EQ(again.result(), Status::ok);
  EXPECT_EQ(json(again).at("code").as_string(), code);
}

TEST_F(ApiTest, RedirectsRecordClicksAndServeStats) {
  const std::string code(json(post(R"({"url": "https://example.com/page"})")).at("code").as_string());
  const http::Response r1 =
      client_->request(Method::get, fmt::format("/{}", code), {},
                       {{"Referer", "https://news.ycombinator.com/item?id=1"}, {"User-Agent", "Mozilla/5.0"}});
  EXPECT_EQ(r1.result(), Status::found);
  EXPECT_EQ(r1[http::Field::location], "https://example.com/page");
  EXPECT_EQ(r1[http::Field::cache_control], "no-store");
  client_->get(fmt::format("/{}", code));
  EXPECT_EQ(client_->request(Method::head, fmt::format("/{}", code)).result(), Status::found);
  ASSERT_TRUE(keel::testing::wait_until([&] { return analytics_.total_clicks() == 3; }, 10s));

  const auto stats = json(client_->get(fmt::format("/api/v1/links/{}", code)));
  EXPECT_EQ(stats.at("clicks").as_int64(), 3);
  const auto& referrers = stats.at("referrers").as_array();
  ASSERT_EQ(referrers.size(), 2u);
  EXPECT_EQ(referrers[0].at("referrer").as_string(), "direct");
  EXPECT_EQ(referrers[0].at("clicks").as_int64(), 2);
  EXPECT_EQ(referrers[1].at("referrer").as_string(), "news.ycombinator.com");
  EXPECT_EQ(stats.at("daily").as_array().at(0).at("date").as_string(), "2026-01-01");
}

TEST_F(ApiTest, PermanentRedirectsAreCachedPrivately) {
  start({.redirect_status = 301});
  const std::string code(json(post(R"({"url": "https://example.com/"})")).at("code").as_string());
  const http::Response r = client_->get(fmt::format("/{}", code));
  EXPECT_EQ(r.result(), Status::moved_permanently);
  EXPECT_EQ(r[http::Field::cache_control], "private, max-age=3600");
}

TEST_F(ApiTest, ErrorsHaveTheirStatusAndCode) {
  const auto expect_error = [&](const http::Response& r, Status status, std::string_view code) {
    EXPECT_EQ(r.result(), status) << r.body();
    EXPECT_EQ(json(r).at("error").at("code").as_string(), code) << r.body();
  };
  expect_error(post("{nope"), Status::bad_request, "invalid_json");
  expect_error(post("[1]"), Status::bad_request, "invalid_json");
  expect_error(post("{}"), Status::bad_request, "invalid_url");
  expect_error(post(R"({"url": 42})"), Status::bad_request, "invalid_url");
  expect_error(post(R"j({"url": "javascript:alert(1)"})j"), Status::bad_request, "invalid_url");
  expect_error(post(R"({"url": "https://sho.rt/abc"})"), Status::bad_request, "invalid_url");
  expect_error(post(R"({"url": "https://a.example/", "alias": "no spaces"})"), Status::bad_request,
               "invalid_alias");
  expect_error(post(R"({"url": "https://a.example/", "expires_at": "tomorrow"})"),
               Status::bad_request, "invalid_expiry");
  EXPECT_EQ(post(R"({"url": "https://a.example/", "alias": "promo"})").result(), Status::created);
  expect_error(post(R"({"url": "https://b.example/", "alias": "promo"})"), Status::conflict,
               "alias_taken");
  expect_error(client_->get("/zzzzzzz"), Status::not_found, "not_found");
}

TEST_F(ApiTest, ExpiredAndDeletedLinksAreGone) {
  const std::string expiring(
      json(post(R"({"url": "https://example.com/sale", "expires_at": "2026-01-01T01:00:00+00:00"})"))
          .at("code")
          .as_string());
  EXPECT_EQ(client_->get(fmt::format("/{}", expiring)).result(), Status::found);
  clock_.advance(2h);
  EXPECT_EQ(client_->get(fmt::format("/{}", expiring)).result(), Status::gone);

  const std::string code(json(post(R"({"url": "https://example.com/"})")).at("code").as_string());
  const auto del = [&](std::string token) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("Authorization", fmt::format("Bearer {}", token));
    return client_->request(Method::delete_, fmt::format("/api/v1/links/{}", code), {}, headers);
  };
  EXPECT_EQ(del("").result(), Status::unauthorized);
  EXPECT_EQ(del("wrong").result(), Status::unauthorized);
  EXPECT_EQ(del("s3cret").result(), Status::no_content);
  EXPECT_EQ(del("s3cret").result(), Status::not_found);
  EXPECT_EQ(client_->get(fmt::format("/{}", code)).result(), Status::gone);
}

TEST_F(ApiTest, CreationIsRateLimitedPerClientAddress) {
  start({.create_limit = {.algorithm = ratelimit::Algorithm::token_bucket,
                          .rate_per_second = 1,
                          .amount = 3}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(post(fmt::format(R"({{"url": "https://example.com/{}"}})", i)).result(),
              Status::created);
  }
  const http::Response limited = post(R"({"url": "https://example.com/x"})");
  EXPECT_EQ(limited.result(), Status::too_many_requests);
  EXPECT_EQ(limited[http::Field::retry_after], "1");
  EXPECT_THAT(std::string(limited["RateLimit-Policy"]), HasSubstr("q=3"));
  clock_.advance(1s);
  EXPECT_EQ(post(R"({"url": "https://example.com/x"})").result(), Status::created);
}

// Found by the abuse review (issue 11): keyed by the full address, an IPv6 client got a budget
// per address of its /64, i.e. no limit at all.
TEST(CreationLimitKey, Ipv6ClientsShareTheirSlash64AndMappedIpv4IsIpv4) {
  const auto key = [](const char* address) {
    return creation_limit_key(boost::asio::ip::make_address(address));
  };
  EXPECT_EQ(key("192.0.2.7"), "192.0.2.7");
  EXPECT_NE(key("192.0.2.7"), key("192.0.2.8"));
  EXPECT_EQ(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::1"));
  EXPECT_NE(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
  EXPECT_EQ(key("::ffff:192.0.2.7"), "192.0.2.7");
}

TEST(Rfc3339, ParsesAndFormats) {
  const auto at = parse_rfc3339("2026-12-01T10:00:00Z");
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(format_rfc3339(*at), "2026-12-01T10:00:00Z");
  EXPECT_EQ(parse_rfc3339("2026-12-01T12:00:00+02:00"), at);
  EXPECT_EQ(parse_rfc3339("2026-12-01T10:00:00.123Z").has_value(), true);
  for (const char* bad : {"", "2026-12-01", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-12-01T10:00:00", "2026-12-01T10:00:00Zjunk", "tomorrow",
                          // found by fuzz/shortener_json_fuzzer.cc: sscanf's leniency (one-digit
                          // fields, spaces, signs) and years that overflow the clock
                          "2030-1-01T10:00:00Z", " 2030-01-01T10:00:00Z", "2030-01-01T-1:00:00Z",
                          "0012-01-01T10:00:15+02:00", "9999-12-31T00:00:00Z",
                          "2026-12-01T10:00:00.Z", "2026-12-01T10:00:00+2:00"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST_F(ApiTest, AnExpiryThatIsNotAStringIsAnInvalidExpiry) {
  const http::Response r = post(R"({"url": "https://example.com/e", "expires_at": 5})");
  EXPECT_EQ(r.result(), Status::bad_request);
  EXPECT_EQ(json(r).at("error").at("code"), "invalid_expiry");
  const http::Response a = post(R"({"url": "https://example.com/e", "alias": 5})");
  EXPECT_EQ(json(a).at("error").at("code"), "invalid_alias");
}

}  // namespace
}  // namespace keel::shortener
