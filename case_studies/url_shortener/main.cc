// keel-shortener: the URL shortener service (docs/url_shortener.md).
//
//   keel-shortener --db links.db --base-url https://sho.rt --admin-token "$TOKEN"
//
// Embedded by default: links in one SQLite file, an in-process cache, analytics in process.
// Many nodes (docs/url_shortener.md, "Many nodes"): every node gets the same
// --postgres (links and counter epochs) and --redis (counter blocks and the shared link cache):
//
//   keel-shortener --listen 0.0.0.0:8080 --postgres "host=db dbname=shortener"
//       --redis cache:6379 --base-url https://sho.rt --code-key "$KEY" --admin-token "$TOKEN"
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/api.h"
#include "case_studies/url_shortener/click_log.h"
#include "case_studies/url_shortener/shortener.h"
#ifdef KEEL_SHORTENER_WITH_POSTGRES
#include "case_studies/url_shortener/postgres_link_store.h"
#include "keel/postgres/event_store.h"
#endif
#ifdef KEEL_SHORTENER_WITH_REDIS
#include "case_studies/url_shortener/redis_counter_source.h"
#include "case_studies/url_shortener/redis_link_cache.h"
#endif
#include "keel/core/metrics.h"
#include "keel/http/host_port.h"
#include "keel/http/server.h"
#include "keel/pubsub/event_bus.h"
#include "keel/sqlite/event_store.h"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

using keel::http::HostPort;
using keel::http::parse_host_port;

// Where links, counter blocks and the link cache live, as the flags chose.
struct Storage {
  std::unique_ptr<keel::shortener::LinkStore> store;
  std::unique_ptr<keel::shortener::CounterSource> counters;  // null: the store's own counter
  std::unique_ptr<keel::cache::Cache<std::string, keel::shortener::Link>> cache;  // null: LRU
  std::string description;
  // The series /metrics shows for these parts (Redis errors and fallbacks); ended before them.
  std::function<std::vector<keel::Subscription>(keel::MetricsRegistry&)> export_metrics;
};

Storage open_storage(const std::string& db, const std::string& postgres,
                     const std::optional<HostPort>& redis, std::size_t threads) {
  using namespace keel::shortener;
  Storage storage;
  if (!postgres.empty()) {
#ifdef KEEL_SHORTENER_WITH_POSTGRES
    storage.store = std::make_unique<PostgresLinkStore>(postgres, PostgresLinkStoreOptions{
                                                                      .connections = threads});
    storage.description = "links in PostgreSQL";
#else
    throw std::runtime_error("--postgres: built without PostgreSQL (KEEL_WITH_POSTGRES=OFF)");
#endif
  } else {
    storage.store = std::make_unique<SqliteLinkStore>(db);
    storage.description = fmt::format("links in SQLite {}", db);
  }
  if (redis) {
#ifdef KEEL_SHORTENER_WITH_REDIS
    const keel::redis::ConnectionOptions connection{
        .host = redis->host, .port = redis->port, .pool_size = threads};
    auto counters = std::make_unique<RedisCounterSource>(
        RedisCounterOptions{.connection = connection}, *storage.store);
    auto cache = std::make_unique<RedisLinkCache>(RedisLinkCacheOptions{.connection = connection});
    // Redis failing is survivable (the store answers instead), so it must be visible.
    storage.export_metrics = [c = cache.get(), n = counters.get()](keel::MetricsRegistry& m) {
      std::vector<keel::Subscription> series;
      series.push_back(m.counter_fn(
          "keel_shortener_redis_errors_total",
          "link cache reads and writes to Redis that failed (answered from the store)", {},
          [c] { return static_cast<double>(c->metrics().redis_errors); }));
      series.push_back(m.counter_fn(
          "keel_shortener_counter_fallbacks_total",
          "counter blocks taken from the link store because Redis failed", {},
          [n] { return static_cast<double>(n->metrics().fallbacks); }));
      return series;
    };
    storage.counters = std::move(counters);
    storage.cache = std::move(cache);
    storage.description += fmt::format(", counter blocks and link cache in Redis {}:{}",
                                       redis->host, redis->port);
#else
    throw std::runtime_error("--redis: built without Redis (KEEL_WITH_REDIS=OFF)");
#endif
  }
  return storage;
}

// Where clicks are kept: the click log and its stats tables, in the SQLite file or PostgreSQL.
struct Analytics {
  std::unique_ptr<keel::cqrs::EventStore> log;
  std::unique_ptr<keel::shortener::ClickStats> stats;
};

Analytics open_analytics(const std::string& db, const std::string& postgres) {
  using namespace keel;
  Analytics analytics;
  if (postgres.empty()) {
    auto log = std::make_unique<sqlite::SqliteEventStore>(db);
    analytics.stats = std::make_unique<shortener::SqliteClickStats>(*log, db);
    analytics.log = std::move(log);
    return analytics;
  }
#ifdef KEEL_SHORTENER_WITH_POSTGRES
  auto log = std::make_unique<postgres::PostgresEventStore>(postgres);
  analytics.stats = std::make_unique<shortener::PostgresClickStats>(*log, postgres);
  analytics.log = std::move(log);
  return analytics;
#else
  throw std::runtime_error("--postgres: built without PostgreSQL (KEEL_WITH_POSTGRES=OFF)");
#endif
}

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
  double create_rate = 2;
  std::int64_t create_burst = 20;
  app.add_option("--listen", listen, "HOST:PORT to listen on")->capture_default_str();
  app.add_option("--db", db, "SQLite database file (the default storage)")->capture_default_str();
  app.add_option("--postgres", postgres,
                 "PostgreSQL connection string: links and clicks stored there (not in --db), "
                 "for several nodes");
  app.add_option("--redis", redis,
                 "Redis HOST:PORT: counter blocks and the link cache shared by the nodes");
  app.add_option("--base-url", base_url, "prefix of short_url (default: http://LISTEN)");
  app.add_option("--admin-token", admin_token, "token for DELETE (or KEEL_ADMIN_TOKEN)")
      ->envname("KEEL_ADMIN_TOKEN");
  app.add_option("--code-key", code_key, "secret key of the code bijection (or KEEL_CODE_KEY)")
      ->envname("KEEL_CODE_KEY");
  app.add_option("--redirect-status", redirect_status, "301 (permanent) or 302")
      ->check(CLI::IsMember({301, 302}))
      ->capture_default_str();
  app.add_option("--threads", threads, "HTTP threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--create-rate", create_rate, "link creations per second per client address")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--create-burst", create_burst, "link creations a client address may burst")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::optional<HostPort> listen_at = parse_host_port(listen);
  if (!listen_at) {
    fmt::print(stderr, "keel-shortener: --listen must be HOST:PORT (port 0-65535), got '{}'\n",
               listen);
    return 2;
  }
  const std::string host = listen_at->host;
  const std::uint16_t port = listen_at->port;
  std::optional<HostPort> redis_at;
  if (!redis.empty()) {
    redis_at = parse_host_port(redis);
    if (!redis_at || redis_at->port == 0) {
      fmt::print(stderr, "keel-shortener: --redis must be HOST:PORT (port 1-65535), got '{}'\n",
                 redis);
      return 2;
    }
  }
  if (!postgres.empty() && !redis_at) {
    fmt::print(stderr,
               "keel-shortener: --postgres without --redis: each node caches links in process, so "
               "a delete on one node reaches the others only when their cache entry expires "
               "(10 min)\n");
  }
  if (base_url.empty()) base_url = fmt::format("http://{}", listen);
  if (code_key.empty()) {
    fmt::print(stderr,
               "keel-shortener: no --code-key: using a development key (codes are guessable by "
               "anyone who reads this source)\n");
    code_key = "keel-development-key";
  }

  try {
    const Storage storage = open_storage(db, postgres, redis_at, threads);
    shortener::Shortener service(*storage.store, {.base_url = base_url,
                                                  .code_key = code_key,
                                                  .counter_source = storage.counters.get(),
                                                  .cache = storage.cache.get()});
    // Click analytics: clicks are events in the click log beside the links (or in PostgreSQL,
    // shared by the nodes), folded inline into the stats tables (click_log.h); the recorder
    // appends them in batches off the request path.
    pubsub::EventBus bus;
    const Analytics analytics = open_analytics(db, postgres);
    ThreadPoolScheduler flusher(1);
    shortener::ClickRecorder recorder(bus, *analytics.log, flusher);
    shortener::Api api(service, bus, *analytics.stats,
                       {.admin_token = admin_token,
                        .redirect_status = redirect_status,
                        .create_limit = ratelimit::Limit::token_bucket(create_rate, create_burst)});
    MetricsRegistry metrics;
    const std::vector<Subscription> storage_series =
        storage.export_metrics ? storage.export_metrics(metrics) : std::vector<Subscription>{};
    http::Router router;
    api.add_routes(router);
    http::Server server(std::move(router), {.host = host,
                                            .port = port,
                                            .threads = threads,
                                            .metrics = &metrics});
    server.start();
    fmt::print("keel-shortener: listening on http://{}:{} (base URL {}, {})\n", host,
               server.port(), base_url, storage.description);
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
