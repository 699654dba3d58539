// keel-shortener: the URL shortener service (docs/url_shortener.md).
//
//   keel-shortener --db links.db --base-url https://sho.rt --admin-token "$TOKEN"
//
// Embedded by default: links in one SQLite file, an in-process cache, analytics in process.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/api.h"
#include "case_studies/url_shortener/click_log.h"
#include "case_studies/url_shortener/shortener.h"
#include "keel/core/metrics.h"
#include "keel/http/server.h"
#include "keel/pubsub/event_bus.h"
#include "keel/sqlite/event_store.h"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  using namespace keel;
  CLI::App app{"keel-shortener: a URL shortener built on keel"};
  std::string listen = "127.0.0.1:8080";
  std::string db = "links.db";
  std::string postgres;
  std::string redis;
  std::string base_url;
  std::string admin_token;
  std::string code_key;
  int redirect_status = 302;
  std::size_t threads = 4;
  app.add_option("--listen", listen, "HOST:PORT to listen on")->capture_default_str();
  app.add_option("--db", db, "SQLite database file (the default storage)")->capture_default_str();
  app.add_option("--postgres", postgres, "PostgreSQL connection string (links and analytics)");
  app.add_option("--redis", redis, "Redis HOST:PORT (shared cache and counter source)");
  app.add_option("--base-url", base_url, "prefix of short_url (default: http://LISTEN)");
  app.add_option("--admin-token", admin_token, "token for DELETE (or KEEL_ADMIN_TOKEN)")
      ->envname("KEEL_ADMIN_TOKEN");
  app.add_option("--code-key", code_key, "secret key of the code bijection (or KEEL_CODE_KEY)")
      ->envname("KEEL_CODE_KEY");
  app.add_option("--redirect-status", redirect_status, "301 (permanent) or 302")
      ->check(CLI::IsMember({301, 302}))
      ->capture_default_str();
  app.add_option("--threads", threads, "HTTP threads")->check(CLI::Range(1, 256))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!postgres.empty() || !redis.empty()) {
    fmt::print(stderr,
               "keel-shortener: --postgres and --redis are not available in this build yet; "
               "use --db (SQLite)\n");
    return 2;
  }
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    fmt::print(stderr, "keel-shortener: --listen must be HOST:PORT, got '{}'\n", listen);
    return 2;
  }
  const std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    fmt::print(stderr, "keel-shortener: invalid port in --listen '{}'\n", listen);
    return 2;
  }
  if (base_url.empty()) base_url = fmt::format("http://{}", listen);
  if (code_key.empty()) {
    fmt::print(stderr,
               "keel-shortener: no --code-key: using a development key (codes are guessable by "
               "anyone who reads this source)\n");
    code_key = "keel-development-key";
  }

  try {
    shortener::SqliteLinkStore store(db);
    shortener::Shortener service(store, {.base_url = base_url, .code_key = code_key});
    // Click analytics: clicks are events in the click log beside the links, folded inline into
    // the stats tables (click_log.h); the recorder appends them in batches off the request path.
    pubsub::EventBus bus;
    sqlite::SqliteEventStore click_log(db);
    shortener::SqliteClickStats analytics(click_log, db);
    ThreadPoolScheduler flusher(1);
    shortener::ClickRecorder recorder(bus, click_log, flusher);
    shortener::Api api(service, bus, analytics,
                       {.admin_token = admin_token, .redirect_status = redirect_status});
    MetricsRegistry metrics;
    http::Router router;
    api.add_routes(router);
    http::Server server(std::move(router), {.host = host,
                                            .port = static_cast<std::uint16_t>(port),
                                            .threads = threads,
                                            .metrics = &metrics});
    server.start();
    fmt::print("keel-shortener: listening on http://{}:{} (base URL {}, database {})\n", host,
               server.port(), base_url, db);
    std::fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fmt::print("keel-shortener: stopping\n");
    server.stop(std::chrono::seconds(5));
    bus.flush();
  } catch (const std::exception& e) {
    fmt::print(stderr, "keel-shortener: {}\n", e.what());
    return 1;
  }
  return 0;
}
