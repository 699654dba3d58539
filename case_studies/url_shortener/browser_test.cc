// The web page in a real browser: headless Chromium driven through ChromeDriver's W3C WebDriver
// protocol (https://www.w3.org/TR/webdriver2/), spoken with keel's own HTTP client.
//
// Each test starts chromedriver on a free loopback port, the shortener in process (SQLite,
// analytics, Api, web page) and a second small server for the link's target. The browser maps
// the made-up host target.test to 127.0.0.1 and fails every other name lookup, so nothing leaves
// the machine (a target on 127.0.0.1 itself would be refused: it is the shortener's own host).
// Waits poll the DOM with a deadline; none sleeps a fixed time.
//
// Needs the Debian packages chromium and chromium-driver (scripts/bootstrap installs them):
// without them the tests fail and say so.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/api.h"
#include "case_studies/url_shortener/codes.h"
#include "case_studies/url_shortener/shortener.h"
#include "keel/http/client.h"
#include "keel/http/server.h"
#include "keel/pubsub/event_bus.h"
#include "tests/support/free_port.h"
#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;
using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace json = boost::json;

// How long the page may take to react to anything (a submit, a fetch, a refresh).
constexpr Duration kPageTimeout = 20s;
// The W3C name of the key under which a command returns an element's id.
constexpr std::string_view kElementKey = "element-6066-11e4-a52e-4f735466cecf";
constexpr std::string_view kTargetHost = "target.test";

struct LogEntry {
  std::string level;   // "SEVERE", "WARNING", "INFO", ...
  std::string source;  // "console-api", "network", "security", "javascript", ...
  std::string message;
};

// One WebDriver session in a headless Chromium, on a running chromedriver.
//
// Thread safety: one thread at a time.
class Browser {
 public:
  Browser(std::uint16_t driver_port, const std::filesystem::path& chromium,
          const std::filesystem::path& profile_dir)
      : driver_("127.0.0.1", driver_port, 60s) {
    json::array args = {
        "--headless=new", "--no-sandbox",  // the sandbox refuses to run as root
        "--disable-gpu", "--disable-dev-shm-usage",
        fmt::format("--user-data-dir={}", profile_dir.string()), "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions",
        "--disable-breakpad", "--no-proxy-server",
        // The target's host resolves to loopback; every other name fails to resolve.
        fmt::format("--host-resolver-rules=MAP {} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    kTargetHost)};
    const json::object capabilities = {
        {"browserName", "chrome"},
        {"goog:chromeOptions", {{"binary", chromium.string()}, {"args", std::move(args)}}},
        // Keeps the console (and CSP reports, which go there) for browser_log().
        {"goog:loggingPrefs", {{"browser", "ALL"}}},
        {"timeouts", {{"implicit", 0}, {"pageLoad", 30'000}, {"script", 10'000}}}};
    const json::value created = command(
        Method::post, "/session", json::object{{"capabilities", {{"alwaysMatch", capabilities}}}});
    session_ = std::string(created.at("sessionId").as_string());
  }

  ~Browser() {
    try {
      command(Method::delete_, session_path(""));
    } catch (const std::exception&) {
      // chromedriver is stopped right after; it takes the browser with it.
    }
  }

  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Loads `url` and waits for the document to finish loading.
  void navigate(std::string_view url) {
    command(Method::post, session_path("/url"), json::object{{"url", url}});
  }
  std::string current_url() { return string_of(command(Method::get, session_path("/url"))); }
  std::string title() { return string_of(command(Method::get, session_path("/title"))); }

  // The first element matching a CSS selector; throws when there is none.
  std::string find(std::string_view css) {
    return element_id(command(Method::post, session_path("/element"), locator(css)));
  }
  std::vector<std::string> find_all(std::string_view css) {
    std::vector<std::string> ids;
    const json::value elements = command(Method::post, session_path("/elements"), locator(css));
    for (const json::value& element : elements.as_array()) ids.push_back(element_id(element));
    return ids;
  }

  // What a person sees of the element: empty when it is hidden.
  std::string text(const std::string& element) {
    return string_of(command(Method::get, element_path(element, "/text")));
  }
  std::string text_of(std::string_view css) { return text(find(css)); }
  // The DOM property (a.href is absolute, input.value is what was typed).
  json::value property(const std::string& element, std::string_view name) {
    return command(Method::get, element_path(element, fmt::format("/property/{}", name)));
  }
  std::string attribute(const std::string& element, std::string_view name) {
    return string_of(
        command(Method::get, element_path(element, fmt::format("/attribute/{}", name))));
  }
  bool hidden(std::string_view css) { return property(find(css), "hidden").as_bool(); }

  void click(const std::string& element) { command(Method::post, element_path(element, "/click")); }
  void type(const std::string& element, std::string_view keys) {
    command(Method::post, element_path(element, "/value"), json::object{{"text", keys}});
  }
  void clear(const std::string& element) { command(Method::post, element_path(element, "/clear")); }

  // The console since the last call: errors, warnings, CSP violations, failed loads.
  // (ChromeDriver's log command; the W3C protocol has none.)
  std::vector<LogEntry> browser_log() {
    std::vector<LogEntry> entries;
    const json::value log =
        command(Method::post, session_path("/se/log"), json::object{{"type", "browser"}});
    for (const json::value& entry : log.as_array()) {
      entries.push_back({.level = string_of(entry.at("level")),
                         .source = string_of(entry.at("source")),
                         .message = string_of(entry.at("message"))});
    }
    return entries;
  }

 private:
  static std::string string_of(const json::value& value) {
    return value.is_string() ? std::string(value.as_string()) : std::string();
  }
  static json::object locator(std::string_view css) {
    return {{"using", "css selector"}, {"value", css}};
  }
  static std::string element_id(const json::value& element) {
    return std::string(element.at(kElementKey).as_string());
  }
  std::string session_path(std::string_view rest) const {
    return fmt::format("/session/{}{}", session_, rest);
  }
  std::string element_path(const std::string& element, std::string_view rest) const {
    return fmt::format("/session/{}/element/{}{}", session_, element, rest);
  }

  // Runs one command and returns its "value"; throws std::runtime_error with WebDriver's error
  // ("no such element", ...) and message when it fails.
  json::value command(Method method, const std::string& path,
                      const json::value& body = json::object{}) {
    const http::Response response = driver_.request(
        method, path, method == Method::post ? json::serialize(body) : std::string(),
        {{"Content-Type", "application/json; charset=utf-8"}});
    json::value reply;
    try {
      reply = json::parse(response.body());
    } catch (const std::exception&) {
      throw std::runtime_error(fmt::format(
          "WebDriver {} {}: HTTP {} with a body that is not JSON: {}",
          http::beast_http::to_string(method), path, response.result_int(), response.body()));
    }
    json::value value = reply.is_object() && reply.as_object().contains("value")
                            ? reply.at("value")
                            : json::value(nullptr);
    if (response.result() != Status::ok) {
      const json::object* error = value.if_object();
      const auto field = [&](std::string_view name) {
        const json::value* v = error != nullptr ? error->if_contains(name) : nullptr;
        return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string("?");
      };
      std::string message = field("message");
      message = message.substr(0, message.find('\n'));  // the rest is a stack trace
      throw std::runtime_error(fmt::format("WebDriver {} {}: HTTP {} {}: {}",
                                           http::beast_http::to_string(method), path,
                                           response.result_int(), field("error"), message));
    }
    return value;
  }

  http::Client driver_;
  std::string session_;
};

// The shortener as keel-shortener runs it (SQLite, cache, analytics, API and web page), on a
// port chosen up front because short_url carries it.
struct Service {
  Service(const std::filesystem::path& db, std::uint16_t port)
      : base_url(fmt::format("http://127.0.0.1:{}", port)),
        store(db.string()),
        shortener(store, {.base_url = base_url, .code_key = "browser-test-key"}),
        analytics(bus),
        api(shortener, bus, analytics) {
    http::Router router;
    api.add_routes(router);
    server = std::make_unique<http::Server>(std::move(router), http::ServerOptions{.port = port});
    server->start();
  }

  std::string base_url;
  SqliteLinkStore store;
  Shortener shortener;
  pubsub::EventBus bus;
  ClickAnalytics analytics;
  Api api;
  std::unique_ptr<http::Server> server;  // last: stops first
};

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      const auto dirs = keel::testing::standard_program_dirs();
      const std::filesystem::path chromium =
          keel::testing::require_program("chromium", "chromium", dirs);
      const std::filesystem::path chromedriver =
          keel::testing::require_program("chromedriver", "chromium-driver", dirs);
      start_target();
      start_service();
      driver_ = keel::testing::launch_on_free_port({
          .name = "chromedriver",
          .argv = [&](std::uint16_t port) -> std::vector<std::string> {
            return {chromedriver.string(), fmt::format("--port={}", port)};
          },
          .log_file = dir_.path() / "chromedriver.log",
          .run_as_user = std::nullopt,
          .ready = driver_ready,
          .timeout = 30s,
      });
      browser_ = std::make_unique<Browser>(driver_.port, chromium, dir_.path() / "profile");
    } catch (const std::exception& e) {
      FAIL() << "cannot run the browser test: " << e.what();
    }
  }

  static bool driver_ready(std::uint16_t port) {
    try {
      http::Client client("127.0.0.1", port, 2s);
      const http::Response r = client.get("/status");
      return r.result() == Status::ok && json::parse(r.body()).at("value").at("ready").as_bool();
    } catch (const std::exception&) {
      return false;
    }
  }

  // The link's target: a page on another "site" that counts its visitors.
  void start_target() {
    http::Router router;
    router.add(Method::get, "/landing", [this](http::Request&) {
      ++target_visits_;
      // An icon of its own, or the browser asks for /favicon.ico and logs the 404.
      return http::text_response(Status::ok,
                                 "<!doctype html><html lang=\"en\"><head><title>Target</title>"
                                 "<link rel=\"icon\" href=\"data:,\"></head>"
                                 "<body><h1 id=\"landed\">You arrived</h1></body></html>",
                                 "text/html; charset=utf-8");
    });
    target_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{});
    target_->start();
    target_url_ =
        fmt::format("http://{}:{}/landing?from=browser-test", kTargetHost, target_->port());
  }

  // Another process may take the free port before the server binds it: then try a new one.
  void start_service() {
    for (int attempt = 1;; ++attempt) {
      try {
        service_ = std::make_unique<Service>(dir_.path() / "links.db",
                                             keel::testing::free_loopback_port());
        return;
      } catch (const std::exception&) {
        if (attempt == 3) throw;
      }
    }
  }

  std::string base() const { return service_->base_url; }

  // Polls `probe` until it holds or kPageTimeout passes. A probe that throws (no such element
  // yet) counts as false.
  static bool eventually(const std::function<bool()>& probe) {
    return keel::testing::wait_until(
        [&] {
          try {
            return probe();
          } catch (const std::exception&) {
            return false;
          }
        },
        kPageTimeout, 100ms);
  }

  // The console entries at `level` that are not from `allowed_source` ("" = none allowed).
  std::vector<std::string> console(std::string_view level, std::string_view allowed_source = "") {
    std::vector<std::string> found;
    for (const LogEntry& entry : browser_->browser_log()) {
      if (entry.level == level && entry.source != allowed_source) {
        found.push_back(fmt::format("[{}] {}", entry.source, entry.message));
      }
    }
    return found;
  }

  // Fills in the form on / and submits it.
  void shorten(std::string_view url) {
    const std::string field = browser_->find("#url");
    browser_->clear(field);
    browser_->type(field, url);
    browser_->click(browser_->find("#shorten"));
  }

  keel::testing::TempDir dir_{"keel-shortener-browser"};
  std::atomic<int> target_visits_{0};
  std::unique_ptr<http::Server> target_;
  std::string target_url_;
  std::unique_ptr<Service> service_;
  keel::testing::LaunchedServer driver_{};
  std::unique_ptr<Browser> browser_;  // last: the session ends before chromedriver stops
};

TEST_F(BrowserTest, ShortenFollowAndSeeTheClickOnTheStatsPage) {
  browser_->navigate(fmt::format("{}/", base()));
  EXPECT_EQ(browser_->title(), "Shorten a link · keel shortener");
  shorten(target_url_);

  std::string short_url;
  ASSERT_TRUE(eventually([&] {
    short_url = browser_->property(browser_->find("#short-url"), "value").as_string();
    return !short_url.empty();
  })) << "no short link shown after submitting the form; error shown: "
      << browser_->text_of("#error");
  ASSERT_THAT(short_url, StartsWith(fmt::format("{}/", base())));
  const std::string code = short_url.substr(base().size() + 1);
  EXPECT_TRUE(is_code(code)) << code;
  EXPECT_EQ(browser_->text_of("#long-url"), target_url_);
  EXPECT_EQ(browser_->property(browser_->find("#stats-link"), "href").as_string(),
            fmt::format("{}/{}+", base(), code));

  // Copy, then paste into another field: what the clipboard holds is the short link.
  browser_->click(browser_->find("#copy"));
  ASSERT_TRUE(eventually([&] { return !browser_->text_of("#copy-status").empty(); }));
  EXPECT_EQ(browser_->text_of("#copy-status"), "Copied to the clipboard.");
  browser_->click(browser_->find("details.options summary"));
  const std::string alias = browser_->find("#alias");
  browser_->type(alias, "\xEE\x80\x89v");  // Control (U+E009) + v
  EXPECT_EQ(browser_->property(alias, "value").as_string(), short_url);

  // Follow the short link: the browser gets the 302 and lands on the target.
  browser_->navigate(short_url);
  EXPECT_EQ(browser_->current_url(), target_url_);
  EXPECT_EQ(browser_->text_of("#landed"), "You arrived");
  EXPECT_EQ(target_visits_.load(), 1);

  // The stats page shows the click once analytics has it (it refreshes by itself).
  browser_->navigate(fmt::format("{}/{}+", base(), code));
  ASSERT_TRUE(eventually([&] { return browser_->text_of("#clicks") == "1"; }))
      << "the stats page shows " << browser_->text_of("#clicks") << " clicks";
  EXPECT_EQ(browser_->title(), fmt::format("Stats for {} · keel shortener", code));
  EXPECT_EQ(browser_->text_of("#clicks-unit"), "click");
  EXPECT_EQ(browser_->text_of("#target"), target_url_);

  std::vector<std::string> cells;
  for (const std::string& cell : browser_->find_all("#referrers tbody td")) {
    cells.push_back(browser_->text(cell));
  }
  EXPECT_THAT(cells,
              ::testing::ElementsAre("direct", "1"));  // navigated to, not clicked from a page

  const std::vector<std::string> bars = browser_->find_all("#daily-chart svg rect.bar");
  ASSERT_EQ(bars.size(), 1u) << "one day with clicks, one bar";
  const LinkStats stats = service_->analytics.stats(code);
  ASSERT_EQ(stats.daily.size(), 1u);
  EXPECT_EQ(browser_->attribute(bars[0], "data-date"), stats.daily[0].first);
  EXPECT_EQ(browser_->attribute(bars[0], "data-clicks"), "1");
  EXPECT_THAT(
      browser_->property(browser_->find("#daily-chart svg desc"), "textContent").as_string(),
      HasSubstr("1 click from"));

  // No script error, no Content-Security-Policy violation, no failed load on any page.
  EXPECT_THAT(console("SEVERE"), ::testing::IsEmpty());
}

TEST_F(BrowserTest, ShowsTheApiErrorAndUnknownLinks) {
  browser_->navigate(fmt::format("{}/", base()));
  shorten("javascript:alert(1)");
  ASSERT_TRUE(eventually([&] { return !browser_->hidden("#error"); }))
      << "no error shown for a javascript: URL";
  EXPECT_THAT(browser_->text_of("#error"), HasSubstr("is not an http or https URL"));
  EXPECT_TRUE(browser_->hidden("#result"));

  // The alias is taken: 409, and its message.
  shorten(target_url_);
  browser_->click(browser_->find("details.options summary"));
  browser_->type(browser_->find("#alias"), "promo");
  browser_->click(browser_->find("#shorten"));
  ASSERT_TRUE(eventually([&] {
    return browser_->property(browser_->find("#short-url"), "value").as_string() ==
           fmt::format("{}/promo", base());
  }));
  EXPECT_TRUE(browser_->hidden("#error"));
  shorten(fmt::format("{}?other=1", target_url_));
  ASSERT_TRUE(eventually([&] { return !browser_->hidden("#error"); }))
      << "no error shown for an alias already taken";
  EXPECT_THAT(browser_->text_of("#error"), HasSubstr("promo"));

  browser_->navigate(fmt::format("{}/zzzzzzz+", base()));
  ASSERT_TRUE(eventually([&] { return !browser_->hidden("#not-found"); }))
      << "an unknown code's stats page does not say so";
  EXPECT_EQ(browser_->text_of("#not-found h1"), "Link not found");
  EXPECT_EQ(browser_->text_of("#missing-code"), "zzzzzzz");
  EXPECT_TRUE(browser_->hidden("#stats"));

  // The refused requests show up as failed loads (400, 409, 404) and nothing else does.
  EXPECT_THAT(console("SEVERE", "network"), ::testing::IsEmpty());
}

}  // namespace
}  // namespace keel::shortener
