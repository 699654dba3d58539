// keel-shortener under abuse: the real binary on SQLite in a temp dir, driven over loopback HTTP.
//   - link creation is rate limited per client address (the TCP peer; X-Forwarded-For and its
//     kin are not trusted), and another address keeps its own budget;
//   - codes are not sequential, so a code does not reveal its neighbours;
//   - no redirect ever goes to a non-http(s) URL, whatever spelling tries to sneak one in;
//   - DELETE needs the exact admin token;
//   - every field reaches SQL as a bound parameter: injection strings round-trip verbatim and
//     the tables survive.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <set>
#include <string>
#include <vector>

#include "keel/core/encoding.h"
#include "keel/http/client.h"
#include "tests/abuse/service.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using http::Method;
using http::Status;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr std::string_view kAdminToken = "adm1n-T0ken-for-the-abuse-tests-7c1e";

class ShortenerAbuseTest : public ::testing::Test {
 protected:
  // Starts keel-shortener with `extra` flags (a creation budget large enough for the test
  // unless the test sets its own).
  void start(std::vector<std::string> extra = {"--create-burst", "100000"}) {
    std::vector<std::string> argv = {
        KEEL_SHORTENER_BINARY,    "--db",       db_.string(),         "--admin-token",
        std::string(kAdminToken), "--code-key", "abuse-test-code-key"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    service_ = Service::start(argv, dir_.path() / "shortener.log");
  }

  http::Response call(Method method, const std::string& target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Client client("127.0.0.1", service_.port);
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return client.request(method, target, std::move(body), headers);
  }

  // POST /api/v1/links with {"url": url} (and an alias when given).
  http::Response create(const std::string& url, const std::string& alias = {}) {
    boost::json::object body{{"url", url}};
    if (!alias.empty()) body["alias"] = alias;
    return call(Method::post, "/api/v1/links", boost::json::serialize(body));
  }

  static boost::json::object json_of(const http::Response& r) {
    return boost::json::parse(r.body()).as_object();
  }
  static std::string error_code(const http::Response& r) {
    return std::string(json_of(r).at("error").at("code").as_string());
  }

  TempDir dir_{"keel-shortener-abuse"};
  std::filesystem::path db_ = dir_.path() / "links.db";
  Service service_;
};

TEST_F(ShortenerAbuseTest, CreationIsRateLimitedPerClientAddressAndForwardedForIsNotTrusted) {
  // A burst of 5 that refills one token per 1,000 s: the sixth creation is over the limit.
  start({"--create-burst", "5", "--create-rate", "0.001"});
  constexpr int kBurst = 5;
  std::string first_code;
  for (int i = 0; i < kBurst; ++i) {
    const http::Response r =
        exchange_from("127.0.0.1", service_.port, Method::post, "/api/v1/links",
                      fmt::format(R"({{"url": "https://example.com/{}"}})", i));
    ASSERT_EQ(r.result(), Status::created) << "creation " << i << ": " << r.body();
    if (i == 0) first_code = std::string(json_of(r).at("code").as_string());
  }
  const http::Response over = exchange_from("127.0.0.1", service_.port, Method::post,
                                            "/api/v1/links", R"({"url": "https://example.com/x"})");
  ASSERT_EQ(over.result(), Status::too_many_requests) << over.body();
  EXPECT_EQ(error_code(over), "rate_limited");
  EXPECT_FALSE(over["Retry-After"].empty()) << "no Retry-After on a 429";
  EXPECT_THAT(std::string(over["RateLimit-Policy"]), HasSubstr("q=5"));
  EXPECT_THAT(std::string(over["RateLimit"]), HasSubstr("r=0"));

  // The same client claiming to be someone else, every common way: still refused. The server
  // keys on the TCP peer; a proxy in front would have to be configured in, not claimed.
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"X-Forwarded-For", "203.0.113.7"},
                                                        {"X-Forwarded-For", "127.0.0.2"},
                                                        {"X-Real-IP", "203.0.113.8"},
                                                        {"Forwarded", "for=203.0.113.9"},
                                                        {"True-Client-IP", "203.0.113.10"}}) {
    const http::Response r =
        exchange_from("127.0.0.1", service_.port, Method::post, "/api/v1/links",
                      R"({"url": "https://example.com/forwarded"})", {{name, value}});
    EXPECT_EQ(r.result(), Status::too_many_requests) << name << ": " << value << " was trusted";
  }

  // Another address has its own budget, untouched by the first one's.
  for (int i = 0; i < kBurst; ++i) {
    const http::Response r =
        exchange_from("127.0.0.2", service_.port, Method::post, "/api/v1/links",
                      fmt::format(R"({{"url": "https://example.org/{}"}})", i));
    EXPECT_EQ(r.result(), Status::created) << "127.0.0.2, creation " << i << ": " << r.body();
  }
  EXPECT_EQ(exchange_from("127.0.0.2", service_.port, Method::post, "/api/v1/links",
                          R"({"url": "https://example.org/x"})")
                .result(),
            Status::too_many_requests);
  // Following links is not limited by creation's budget.
  const http::Response follow =
      exchange_from("127.0.0.1", service_.port, Method::get, "/" + first_code);
  EXPECT_EQ(follow.result(), Status::found) << follow.body();
}

// Consecutive creations get codes that are far apart, in no order: a code tells nothing about
// the codes created just before or after it. Asserted over 200 consecutive creations, the codes
// read as Base62 numbers in [0, 62^7): all distinct; no two within 1,000 of each other (so no
// code is adjacent to another, nor found by walking 1,000 steps from it); the code went up in
// between 25% and 75% of the consecutive pairs (a counter goes up in 100%); and at least 20
// different first characters (a counter's codes share their leading characters). With the code
// key fixed, the codes are the same on every run: this is not a statistical test that can flake.
TEST_F(ShortenerAbuseTest, ConsecutiveCodesAreNotSequential) {
  start();
  constexpr int kLinks = 200;
  std::vector<std::uint64_t> values;
  std::set<char> first_characters;
  for (int i = 0; i < kLinks; ++i) {
    const http::Response r = create(fmt::format("https://example.com/page/{}", i));
    ASSERT_EQ(r.result(), Status::created) << r.body();
    const std::string code(json_of(r).at("code").as_string());
    ASSERT_EQ(code.size(), 7u) << code;
    values.push_back(base62_decode(code));
    first_characters.insert(code.front());
  }
  int increases = 0;
  for (std::size_t i = 1; i < values.size(); ++i) increases += values[i] > values[i - 1] ? 1 : 0;
  EXPECT_GE(increases, (kLinks - 1) / 4) << "codes mostly go down: a counter in disguise";
  EXPECT_LE(increases, 3 * (kLinks - 1) / 4) << "codes mostly go up: a counter in disguise";
  EXPECT_GE(first_characters.size(), 20u);
  std::vector<std::uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    ASSERT_NE(sorted[i], sorted[i - 1]) << "two links got the same code";
    EXPECT_GT(sorted[i] - sorted[i - 1], 1000u)
        << "codes " << base62_encode(sorted[i - 1], 7) << " and " << base62_encode(sorted[i], 7)
        << " are neighbours";
  }
}

// What must never become a redirect: other schemes, spelled every way browsers forgive
// (mixed case, whitespace and control characters inside or around the scheme), scheme-relative
// and backslash URLs that a browser resolves against the current host, and credentials that
// make a URL look like it goes to a trusted host.
const std::vector<std::string>& refused_urls() {
  static const std::vector<std::string> urls = {
      "javascript:alert(1)",
      "JavaScript:alert(document.cookie)",
      "JAVASCRIPT:alert(1)",
      " javascript:alert(1)",
      "\tjavascript:alert(1)",
      "java\tscript:alert(1)",
      "java\nscript:alert(1)",
      "java\rscript:alert(1)",
      "javascript\r\n:alert(1)",
      std::string("\0javascript:alert(1)", 20),
      "\x01javascript:alert(1)",
      "javascript://example.com/%0aalert(1)",
      "jav&#x09;ascript:alert(1)",
      "javascript%3Aalert(1)",
      "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
      "DATA:text/html,<script>alert(1)</script>",
      "file:///etc/passwd",
      "FILE://localhost/etc/passwd",
      "vbscript:msgbox(1)",
      "VBScript:MsgBox(1)",
      "ftp://evil.example/",
      "gopher://evil.example/",
      "ws://evil.example/",
      "mailto:a@evil.example",
      "tel:+15555550100",
      "about:blank",
      "blob:https://evil.example/0c5b",
      "intent://evil.example#Intent;scheme=javascript;end",
      "//evil.example",
      "//evil.example/path",
      "///evil.example",
      "\\\\evil.example",
      "\\/evil.example",
      "/\\evil.example",
      "/%2F/evil.example",
      "http:/evil.example",
      "http:evil.example",
      "http:\\\\evil.example",
      "https:\\\\evil.example\\path",
      "https://user:password@evil.example/",
      "https://example.com@evil.example/",
      "https://example.com:@evil.example/",
      "https://@evil.example/",
      "https://example.com\\@evil.example/",
      "https://example.com/\r\nLocation: javascript:alert(1)",
      "https://example.com/\nSet-Cookie: a=b",
      "https://exa mple.com/",
      "https:// evil.example/",
      "",
      "   ",
      "https://",
      "http://",
  };
  return urls;
}

TEST_F(ShortenerAbuseTest, NoRedirectToANonHttpUrlIsEverCreatedOrServed) {
  start();
  int refused = 0;
  for (const std::string& url : refused_urls()) {
    const http::Response r = create(url);
    EXPECT_EQ(r.result(), Status::bad_request)
        << "accepted " << boost::json::serialize(boost::json::value(url)) << ": " << r.body();
    if (r.result() == Status::bad_request) {
      EXPECT_EQ(error_code(r), "invalid_url") << r.body();
      ++refused;
    }
    // With an alias, through the same check.
    const http::Response aliased = create(url, fmt::format("alias-{}", refused));
    EXPECT_EQ(aliased.result(), Status::bad_request) << aliased.body();
  }
  RecordProperty("refused", refused);

  // URLs that are fine, however odd they look: accepted, and their redirect is http(s) to the
  // host they name, nothing else of the request mixed in.
  const std::vector<std::pair<std::string, std::string>> accepted = {
      {"HTTPS://Example.COM/Path", "https://example.com/Path"},
      {"https://example.com/?next=javascript:alert(1)",
       "https://example.com/?next=javascript:alert(1)"},
      {"https://example.com/#javascript:alert(1)", "https://example.com/#javascript:alert(1)"},
      {"https://example.com/%0d%0aSet-Cookie:%20a=b",
       "https://example.com/%0d%0aSet-Cookie:%20a=b"},
      {"http://example.com:8080", "http://example.com:8080/"},
  };
  for (const auto& [input, stored] : accepted) {
    const http::Response r = create(input);
    ASSERT_EQ(r.result(), Status::created) << input << ": " << r.body();
    EXPECT_EQ(json_of(r).at("url").as_string(), stored);
    const std::string code(json_of(r).at("code").as_string());
    // Query parameters and headers a victim's link could carry do not change the target.
    const http::Response follow =
        call(Method::get, fmt::format("/{}?url=javascript:alert(1)&next=//evil.example", code), {},
             {{"Referer", "javascript:alert(1)"}, {"X-Forwarded-Host", "evil.example"}});
    ASSERT_EQ(follow.result(), Status::found) << follow.body();
    EXPECT_EQ(follow[http::Field::location], stored);
  }

  // And whatever got into the table: every stored URL is http(s) with a host.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT url FROM links", -1, &statement, nullptr), SQLITE_OK);
  int rows = 0;
  while (sqlite3_step(statement) == SQLITE_ROW) {
    const std::string url(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)));
    const auto parsed = boost::urls::parse_uri(url);
    ASSERT_TRUE(parsed.has_value()) << url;
    EXPECT_TRUE(parsed->scheme() == "http" || parsed->scheme() == "https") << url;
    EXPECT_FALSE(parsed->encoded_host().empty()) << url;
    EXPECT_FALSE(parsed->has_userinfo()) << url;
    ++rows;
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  EXPECT_EQ(rows, static_cast<int>(accepted.size()));
}

// DELETE needs "Authorization: Bearer <the token>", exactly. Api::authorised
// (case_studies/url_shortener/api.cc) compares SHA-256 digests of the given and the expected
// token with CRYPTO_memcmp, so the time taken tells neither the content nor the length.
TEST_F(ShortenerAbuseTest, DeleteNeedsTheExactAdminToken) {
  start();
  const http::Response created = create("https://example.com/keep-me");
  ASSERT_EQ(created.result(), Status::created);
  const std::string code(json_of(created).at("code").as_string());
  const std::string token(kAdminToken);
  const std::vector<std::vector<std::pair<std::string, std::string>>> refused = {
      {},
      {{"Authorization", ""}},
      {{"Authorization", "Bearer"}},
      {{"Authorization", "Bearer "}},
      {{"Authorization", "Bearer wrong"}},
      {{"Authorization", "Bearer " + token.substr(0, token.size() - 1)}},  // a prefix
      {{"Authorization", "Bearer " + token.substr(0, 1)}},
      {{"Authorization", "Bearer " + token + "x"}},  // longer
      {{"Authorization", "Bearer " + token + token}},
      {{"Authorization", "Bearer x" + token}},
      // (Not "Bearer <token> ": HTTP strips whitespace around a field value, RFC 9110 5.5, so
      // that is the same header as the right one.)
      {{"Authorization", "Bearer  " + token}},
      {{"Authorization", "Bearer " + std::string(token.size(), 'a')}},
      {{"Authorization", "Basic " + token}},
      {{"Authorization", token}},
      {{"Authorization", "Token " + token}},
      {{"X-Admin-Token", token}},
      {{"Cookie", "token=" + token}},
  };
  for (const auto& headers : refused) {
    const http::Response r = call(Method::delete_, "/api/v1/links/" + code, {}, headers);
    EXPECT_EQ(r.result(), Status::unauthorized)
        << (headers.empty() ? "no header" : headers[0].first + ": " + headers[0].second);
    EXPECT_EQ(r[http::Field::www_authenticate], "Bearer");
  }
  // The token in the query string is no token either.
  EXPECT_EQ(call(Method::delete_, fmt::format("/api/v1/links/{}?token={}", code, token)).result(),
            Status::unauthorized);
  EXPECT_EQ(call(Method::get, "/" + code).result(), Status::found) << "the link was deleted";

  EXPECT_EQ(
      call(Method::delete_, "/api/v1/links/" + code, {}, {{"Authorization", "Bearer " + token}})
          .result(),
      Status::no_content);
  EXPECT_EQ(call(Method::get, "/" + code).result(), Status::gone);
}

TEST_F(ShortenerAbuseTest, WithoutAnAdminTokenConfiguredNothingCanBeDeleted) {
  service_ =
      Service::start({KEEL_SHORTENER_BINARY, "--db", db_.string()}, dir_.path() / "shortener.log");
  const http::Response created = create("https://example.com/keep-me");
  ASSERT_EQ(created.result(), Status::created);
  const std::string code(json_of(created).at("code").as_string());
  for (const char* header : {"Bearer ", "Bearer", "Bearer x"}) {
    EXPECT_EQ(
        call(Method::delete_, "/api/v1/links/" + code, {}, {{"Authorization", header}}).result(),
        Status::unauthorized)
        << header;
  }
  EXPECT_EQ(call(Method::get, "/" + code).result(), Status::found);
}

// Strings that break SQL built by concatenation, in every field that reaches the database:
// the URL (path, query, fragment), the alias, the expiry, the code in paths (show, follow,
// delete) and the Referer host that click analytics store. Each comes back exactly as sent, or
// is refused by validation with a 400/404; and the tables are all there afterwards.
TEST_F(ShortenerAbuseTest, InjectionStringsAreDataNotSql) {
  start();
  const std::vector<std::string> injections = {
      "';DROP%20TABLE%20links;--",   "'%20OR%20'1'='1",
      "1);DELETE%20FROM%20links;--", "x'%7C%7C(SELECT%20url%20FROM%20links%20LIMIT%201)%7C%7C'",
      "%22%20OR%20%22%22=%22",       "')%20UNION%20SELECT%20*%20FROM%20sqlite_master--",
  };
  std::vector<std::pair<std::string, std::string>> links;  // code, url
  for (std::size_t i = 0; i < injections.size(); ++i) {
    const std::string& bad = injections[i];
    const std::string url = fmt::format("https://example.com/{}?q={}#{}", bad, bad, bad);
    const http::Response r = create(url);
    ASSERT_EQ(r.result(), Status::created) << url << ": " << r.body();
    EXPECT_EQ(json_of(r).at("url").as_string(), url) << "did not round-trip";
    links.emplace_back(std::string(json_of(r).at("code").as_string()), url);
  }
  // The same URL again is deduplicated by its digest, not by a query the URL could change.
  const http::Response again = create(links[0].second);
  EXPECT_EQ(again.result(), Status::ok);
  EXPECT_EQ(json_of(again).at("code").as_string(), links[0].first);

  // Aliases may hold only [A-Za-z0-9_-]: SQL in an alias is refused before any query.
  for (const char* alias : {"';DROP TABLE links;--", "a' OR '1'='1", "x\"); --"}) {
    const http::Response r = create("https://example.com/alias", alias);
    EXPECT_EQ(r.result(), Status::bad_request) << alias;
    EXPECT_EQ(error_code(r), "invalid_alias");
  }
  // Valid aliases that look like SQL comments and operators are just names.
  for (const std::string alias : {"--", "x--", "drop_table--links", "or-1-1"}) {
    const http::Response r = create(fmt::format("https://example.com/{}", alias), alias);
    if (alias.size() < 3) {
      EXPECT_EQ(r.result(), Status::bad_request) << alias;
      continue;
    }
    ASSERT_EQ(r.result(), Status::created) << alias << ": " << r.body();
    EXPECT_EQ(json_of(r).at("code").as_string(), alias);
    links.emplace_back(alias, fmt::format("https://example.com/{}", alias));
  }
  // Expiry: only RFC 3339 reaches the database.
  const http::Response expiry = call(
      Method::post, "/api/v1/links",
      R"({"url": "https://example.com/e", "expires_at": "2030-01-01T00:00:00Z'; DROP TABLE links;--"})");
  EXPECT_EQ(expiry.result(), Status::bad_request);
  EXPECT_EQ(error_code(expiry), "invalid_expiry");

  // Codes in paths: no link matches, nothing is deleted.
  const std::string auth = fmt::format("Bearer {}", kAdminToken);
  for (const std::string& bad : injections) {
    EXPECT_EQ(call(Method::get, "/api/v1/links/" + bad).result(), Status::not_found) << bad;
    EXPECT_EQ(call(Method::get, "/" + bad).result(), Status::not_found) << bad;
    EXPECT_EQ(call(Method::delete_, "/api/v1/links/" + bad, {}, {{"Authorization", auth}}).result(),
              Status::not_found)
        << bad;
  }

  // The Referer's host is stored by click analytics: it comes back verbatim in the stats.
  const std::string referrer_host = "x');drop%20table%20clicks;--.example";
  const std::string& code = links[0].first;
  ASSERT_EQ(call(Method::get, "/" + code, {},
                 {{"Referer", fmt::format("https://{}/page", referrer_host)}})
                .result(),
            Status::found);
  std::string stats;
  const bool recorded = wait_until(
      [&] {
        stats = call(Method::get, "/api/v1/links/" + code).body();
        return stats.find(referrer_host) != std::string::npos;
      },
      10s, 50ms);
  EXPECT_TRUE(recorded) << "the referrer did not round-trip: " << stats;

  // Every link still resolves to exactly its URL, and the tables are all there.
  for (const auto& [link_code, url] : links) {
    const http::Response follow = call(Method::get, "/" + link_code);
    ASSERT_EQ(follow.result(), Status::found) << link_code;
    EXPECT_EQ(follow[http::Field::location], url);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM links", -1, &statement, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(statement, 0), static_cast<int>(links.size()));
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

}  // namespace
}  // namespace keel::testing
