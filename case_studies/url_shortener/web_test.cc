// The web page's routes over real loopback HTTP: what is served where, with which headers.
// (What the page does in a browser is browser_test.cc.)
#include "case_studies/url_shortener/web.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/api.h"
#include "keel/http/client.h"
#include "keel/http/server.h"
#include "keel/pubsub/event_bus.h"
#include "tests/support/temp_dir.h"

namespace keel::shortener {
namespace {

using http::Field;
using http::Method;
using http::Status;
using ::testing::HasSubstr;
using ::testing::Not;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class WebTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::Router router;
    api_.add_routes(router);  // the web routes come with the API's
    server_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{});
    server_->start();
    client_ = std::make_unique<http::Client>("127.0.0.1", server_->port());
  }
  std::string create(const std::string& body) {
    const http::Response r = client_->request(Method::post, "/api/v1/links", body,
                                              {{"Content-Type", "application/json"}});
    return std::string(boost::json::parse(r.body()).at("code").as_string());
  }
  static void expect_html_headers(const http::Response& r) {
    EXPECT_EQ(r[Field::content_type], "text/html; charset=utf-8");
    EXPECT_EQ(r[Field::cache_control], "no-cache");
    EXPECT_THAT(std::string(r["Content-Security-Policy"]), HasSubstr("default-src 'self'"));
    EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(r["Referrer-Policy"], "same-origin");
    EXPECT_EQ(r[Field::x_frame_options], "DENY");
  }

  keel::testing::TempDir dir_{"keel-shortener-web"};
  SqliteLinkStore store_{(dir_.path() / "links.db").string()};
  Shortener shortener_{store_, {.base_url = "https://sho.rt", .code_key = "k"}};
  pubsub::EventBus bus_;
  ClickAnalytics analytics_{bus_};
  Api api_{shortener_, bus_, analytics_, {.admin_token = "s3cret"}};
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(WebTest, EmbeddedFilesAreTheFilesOfTheWebFolder) {
  std::vector<std::string> names;
  for (const WebFile& file : embedded_web_files()) names.emplace_back(file.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"index.html", "stats.html", "app.js", "style.css"}));
  for (const WebFile& file : embedded_web_files()) {
    EXPECT_EQ(file.bytes, read_file(fmt::format("{}/{}", KEEL_SHORTENER_WEB_DIR, file.name)))
        << file.name;
  }
}

TEST_F(WebTest, HomePageIsHtmlWithTheSecurityHeaders) {
  const http::Response r = client_->get("/");
  EXPECT_EQ(r.result(), Status::ok);
  expect_html_headers(r);
  EXPECT_THAT(r.body(), HasSubstr(R"(<form id="shorten-form")"));
  EXPECT_THAT(r.body(), HasSubstr(R"(<script src="/static/app.js" defer></script>)"));
}

TEST_F(WebTest, PagesHaveNoInlineScriptOrStyle) {
  for (const std::string page : {"index.html", "stats.html"}) {
    const std::string html = read_file(fmt::format("{}/{}", KEEL_SHORTENER_WEB_DIR, page));
    EXPECT_THAT(html, Not(HasSubstr("<script>"))) << page;
    EXPECT_THAT(html, Not(HasSubstr("<style"))) << page;
    EXPECT_THAT(html, Not(HasSubstr(" style="))) << page;
    EXPECT_THAT(html, Not(::testing::ContainsRegex(R"(\son[a-z]+=)")))
        << page << ": an event handler";
  }
}

TEST_F(WebTest, StatsPageIsServedForALinkAndIs404ForAnUnknownOrDeletedCode) {
  const std::string code = create(R"({"url": "https://example.com/stats"})");
  const http::Response page = client_->get(fmt::format("/{}+", code));
  EXPECT_EQ(page.result(), Status::ok);
  expect_html_headers(page);
  EXPECT_THAT(page.body(), HasSubstr(R"(<section id="stats")"));

  const http::Response unknown = client_->get("/zzzzzzz+");
  EXPECT_EQ(unknown.result(), Status::not_found);
  expect_html_headers(unknown);
  EXPECT_EQ(unknown.body(), page.body()) << "the page itself says \"not found\"";

  ASSERT_EQ(client_
                ->request(Method::delete_, fmt::format("/api/v1/links/{}", code), {},
                          {{"Authorization", "Bearer s3cret"}})
                .result(),
            Status::no_content);
  EXPECT_EQ(client_->get(fmt::format("/{}+", code)).result(), Status::not_found);
}

TEST_F(WebTest, CodesWithoutThePlusStillRedirect) {
  const std::string code = create(R"({"url": "https://example.com/away"})");
  const http::Response r = client_->get(fmt::format("/{}", code));
  EXPECT_EQ(r.result(), Status::found);
  EXPECT_EQ(r[Field::location], "https://example.com/away");
}

TEST_F(WebTest, StaticFilesHaveTheirTypeAndAreCached) {
  const auto expect_static = [&](std::string_view path, std::string_view type) {
    const http::Response r = client_->get(path);
    EXPECT_EQ(r.result(), Status::ok) << path;
    EXPECT_EQ(r[Field::content_type], type) << path;
    EXPECT_EQ(r[Field::cache_control], "public, max-age=3600") << path;
    EXPECT_EQ(r["X-Content-Type-Options"], "nosniff") << path;
    EXPECT_FALSE(r[Field::etag].empty()) << path;
    EXPECT_FALSE(r.body().empty()) << path;
  };
  expect_static("/static/app.js", "text/javascript; charset=utf-8");
  expect_static("/static/style.css", "text/css; charset=utf-8");
  expect_static("/static/favicon.svg", "image/svg+xml");

  const http::Response missing = client_->get("/static/nope.js");
  EXPECT_EQ(missing.result(), Status::not_found);
  EXPECT_EQ(boost::json::parse(missing.body()).at("error").at("code").as_string(), "not_found");
}

TEST_F(WebTest, MatchingETagGets304WithoutABody) {
  const http::Response first = client_->get("/static/app.js");
  const std::string etag(first[Field::etag]);
  ASSERT_THAT(etag, ::testing::MatchesRegex("\"[0-9a-f]+\""));

  const http::Response again =
      client_->request(Method::get, "/static/app.js", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(again.result(), Status::not_modified);
  EXPECT_TRUE(again.body().empty());
  EXPECT_EQ(again[Field::etag], etag);
  EXPECT_EQ(again[Field::cache_control], "public, max-age=3600");

  const http::Response changed =
      client_->request(Method::get, "/static/app.js", {}, {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(changed.result(), Status::ok);
  EXPECT_EQ(changed.body(), first.body());
}

TEST_F(WebTest, HeadGetsTheHeadersOnly) {
  const http::Response r = client_->request(Method::head, "/");
  EXPECT_EQ(r.result(), Status::ok);
  EXPECT_TRUE(r.body().empty());
  EXPECT_EQ(r["Content-Security-Policy"], client_->get("/")["Content-Security-Policy"]);
}

}  // namespace
}  // namespace keel::shortener
