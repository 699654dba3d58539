// keel-notifier: the notification service (docs/notification_system.md).
//
//   keel-notifier --db notifier.db --config notifier.json
//   keel-notifier --postgres "host=db dbname=notifier" --config notifier.json   # many workers
//
// Embedded by default: the queue in one SQLite file, every channel on the console provider.
// Several processes on one PostgreSQL database share the work (SELECT ... FOR UPDATE SKIP LOCKED).
#include <fmt/format.h>
#include <signal.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "case_studies/notification_system/api.h"
#include "case_studies/notification_system/config.h"
#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/sqlite_store.h"
#include "keel/core/metrics.h"
#include "keel/http/host_port.h"
#include "keel/http/server.h"
#include "keel/pubsub/event_bus.h"
#ifdef KEEL_NOTIFIER_POSTGRES
#include "case_studies/notification_system/postgres_store.h"
#endif

namespace {

// The same rules as keel-shortener's --listen.
using keel::http::HostPort;
using keel::http::parse_host_port;

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  using namespace keel;
  CLI::App app{"keel-notifier: a notification service built on keel"};
  std::string listen = "127.0.0.1:8090";
  std::string db = "notifier.db";
  std::string postgres;
  std::string config_file;
  std::size_t threads = 4;
  app.add_option("--listen", listen, "HOST:PORT to listen on")->capture_default_str();
  app.add_option("--db", db, "SQLite database file (the default storage)")->capture_default_str();
  app.add_option("--postgres", postgres,
                 "PostgreSQL connection string (several workers on one database)");
  app.add_option("--config", config_file,
                 "JSON file: providers per channel, retry limits, mandatory categories, workers");
  app.add_option("--threads", threads, "HTTP threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::optional<HostPort> listen_at = parse_host_port(listen);
  if (!listen_at) {
    fmt::print(stderr, "keel-notifier: --listen must be HOST:PORT (port 0-65535), got '{}'\n",
               listen);
    return 2;
  }
  const std::string host = listen_at->host;
  const std::uint16_t port = listen_at->port;

  try {
    notifier::NotifierConfig config;
    if (!config_file.empty()) config = notifier::load_config(config_file);
    MetricsRegistry metrics;
    pubsub::EventBus bus;
    const auto dispatcher = notifier::make_dispatcher(
        config.providers,
        {.metrics = &metrics, .allowed_private_hosts = config.allowed_private_hosts});
    std::unique_ptr<notifier::NotificationStore> store;
    std::string storage;
    if (!postgres.empty()) {
#ifdef KEEL_NOTIFIER_POSTGRES
      // One connection reserved per critical worker thread, so that standard work (the
      // standard workers and the HTTP threads, sharing the rest) can never take them all.
      const std::size_t critical = config.notifier.critical_workers.threads;
      store = std::make_unique<notifier::PostgresNotificationStore>(
          postgres,
          notifier::PostgresStoreOptions{
              .connections = critical + std::min<std::size_t>(
                                            config.notifier.standard_workers.threads + threads, 16),
              .critical_connections = critical,
              .rules = config.queue});
      storage = "PostgreSQL";
#else
      fmt::print(stderr, "keel-notifier: built without PostgreSQL; use --db\n");
      return 2;
#endif
    } else {
      store = std::make_unique<notifier::SqliteNotificationStore>(
          db, notifier::SqliteStoreOptions{.rules = config.queue});
      storage = fmt::format("SQLite {}", db);
    }
    notifier::NotifierOptions options = config.notifier;
    options.events = &bus;
    options.metrics = &metrics;
    notifier::Notifier service(*store, *dispatcher, options);
    notifier::Api api(service);
    http::Router router;
    api.add_routes(router);
    http::Server server(std::move(router), {.host = host,
                                            .port = port,
                                            .threads = threads,
                                            .metrics = &metrics});
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    server.start();
    service.start();
    fmt::print("keel-notifier: listening on http://{}:{} ({})\n", host, server.port(), storage);
    std::fflush(stdout);
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fmt::print("keel-notifier: stopping\n");
    std::fflush(stdout);
    server.stop(std::chrono::seconds(5));
    service.stop();
    bus.flush();
  } catch (const std::exception& e) {
    fmt::print(stderr, "keel-notifier: {}\n", e.what());
    return 1;
  }
  return 0;
}
