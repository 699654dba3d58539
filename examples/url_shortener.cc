// Demo of the URL shortener case study: the service starts in process on a free port and is
// used over real HTTP — shorten a few URLs (one twice: dedup; one invalid: the error), follow
// short links with different referrers, then read the stats.
#include <fmt/format.h>

#include <unistd.h>
#include <boost/json/parse.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/api.h"
#include "case_studies/url_shortener/shortener.h"
#include "examples/demo.h"
#include "keel/http.h"
#include "keel/pubsub.h"

namespace keel::demo {

void run_url_shortener_demo() {
  heading("URL shortener: a service built on keel, over real HTTP");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("keel-shortener-demo-{}", getpid());
  std::filesystem::create_directories(dir);
  {
    shortener::SqliteLinkStore store((dir / "links.db").string());
    pubsub::EventBus bus;
    shortener::ClickAnalytics analytics(bus);
    http::Router router;
    // The base URL is only known once the port is: a placeholder host for short_url.
    shortener::Shortener service(store, {.base_url = "http://sho.rt", .code_key = "demo-key"});
    shortener::Api api(service, bus, analytics, {.admin_token = "demo-token"});
    api.add_routes(router);
    http::Server server(std::move(router), {});
    server.start();
    fmt::print("  keel-shortener listening on 127.0.0.1:{} (SQLite in {})\n\n", server.port(),
               dir.string());
    http::Client client("127.0.0.1", server.port());

    const auto shorten = [&](std::string_view json) {
      const http::Response r =
          client.request(http::Method::post, "/api/v1/links", std::string(json),
                         {{"Content-Type", "application/json"}});
      fmt::print("  POST /api/v1/links {}\n    -> {} {}\n", json, r.result_int(), r.body());
      return r;
    };
    const auto code_of = [](const http::Response& r) {
      return std::string(boost::json::parse(r.body()).at("code").as_string());
    };
    const std::string docs = code_of(shorten(R"({"url": "https://github.com/boostorg/beast"})"));
    const std::string again =
        code_of(shorten(R"({"url": "HTTPS://GitHub.com:443/boostorg/beast"})"));
    fmt::print("    same URL after normalisation -> same code: {}\n", docs == again ? "yes" : "no");
    shorten(R"({"url": "https://en.wikipedia.org/wiki/Saga_pattern", "alias": "sagas"})");
    shorten(R"j({"url": "javascript:alert(document.cookie)"})j");
    shorten(R"({"url": "https://example.com/", "alias": "sagas"})");

    fmt::print("\n  following http://sho.rt/{} three times:\n", docs);
    for (const auto& [referer, agent] :
         {std::pair<std::string, std::string>{"https://news.ycombinator.com/item?id=1",
                                              "Mozilla/5.0"},
          {"https://www.reddit.com/r/cpp/", "Mozilla/5.0"},
          {"", "curl/8.0"}}) {
      std::vector<std::pair<std::string, std::string>> headers = {{"User-Agent", agent}};
      if (!referer.empty()) headers.emplace_back("Referer", referer);
      const http::Response r =
          client.request(http::Method::get, fmt::format("/{}", docs), {}, headers);
      fmt::print("    GET /{} (referer {}) -> {} Location: {}\n", docs,
                 referer.empty() ? "none" : referer, r.result_int(),
                 std::string(r[http::Field::location]));
    }
    fmt::print("    GET /unknown -> {}\n", client.get("/nothing").result_int());
    bus.flush();  // analytics are eventually consistent; the demo waits for them
    fmt::print("\n  GET /api/v1/links/{}\n    -> {}\n", docs,
               client.get(fmt::format("/api/v1/links/{}", docs)).body());
    const http::Response removed = client.request(http::Method::delete_, "/api/v1/links/sagas", {},
                                                  {{"Authorization", "Bearer demo-token"}});
    fmt::print("  DELETE /api/v1/links/sagas -> {}; GET /sagas -> {}\n", removed.result_int(),
               client.get("/sagas").result_int());
    server.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace keel::demo
