// The URL shortener's core without HTTP: shortens per second through Shortener::create (each a
// new URL: normalise, dedup lookup, insert; a counter block of 100 every 100 creates) on SQLite
// (a file in $TMPDIR, WAL) and PostgreSQL (a private server from tests/support: loopback TCP,
// fsync off, so the figure is round trips, not the disk), alone and with Redis as counter
// source and shared cache, each deployment after 500 untimed creates; then resolves per second
// of one hot link from the in-process cache, from the Redis cache's in-process L1, and from
// Redis itself (no L1: one GET per resolve).
// Run: build/release/bench/keel_shortener_benchmark (figures in docs/url_shortener.md)
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "case_studies/url_shortener/postgres_link_store.h"
#include "case_studies/url_shortener/redis_counter_source.h"
#include "case_studies/url_shortener/redis_link_cache.h"
#include "case_studies/url_shortener/shortener.h"
#include "tests/support/postgres_server.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace keel::shortener {
namespace {

testing::TempDir& temp_dir() {
  static testing::TempDir dir("keel-shortener-bench");
  return dir;
}

testing::PostgresServer& postgres_server() {
  static const auto server = testing::PostgresServer::start();
  return *server;
}

testing::RedisServer& redis_server() {
  static const auto server = testing::RedisServer::start();
  return *server;
}

redis::ConnectionOptions redis_connection() {
  return {.host = redis_server().host(), .port = redis_server().port(), .pool_size = 8};
}

constexpr int kWarmUpCreates = 500;

// One deployment: a store, optionally Redis, and a Shortener over them. Built once per name and
// kept to the end of the process (benchmark threads share it).
struct Deployment {
  std::unique_ptr<LinkStore> store;
  std::unique_ptr<RedisCounterSource> counters;
  std::unique_ptr<RedisLinkCache> cache;
  std::unique_ptr<Shortener> shortener;
};

std::mutex deployments_mutex;
std::map<std::string, Deployment> deployments;  // guarded by deployments_mutex

Deployment& deployment(const std::string& kind) {
  const std::lock_guard lock(deployments_mutex);
  Deployment& d = deployments[kind];
  if (d.shortener) return d;
  if (kind.starts_with("sqlite")) {
    d.store = std::make_unique<SqliteLinkStore>((temp_dir().path() / (kind + ".db")).string());
  } else {
    d.store =
        std::make_unique<PostgresLinkStore>(postgres_server().create_database("bench_" + kind),
                                            PostgresLinkStoreOptions{.connections = 8});
  }
  ShortenerOptions options{.base_url = "https://sho.rt", .code_key = "bench"};
  if (kind.ends_with("redis") || kind.ends_with("redis_l1")) {
    d.counters = std::make_unique<RedisCounterSource>(
        RedisCounterOptions{.connection = redis_connection(), .key = kind + ":counter"}, *d.store);
    d.cache = std::make_unique<RedisLinkCache>(
        RedisLinkCacheOptions{.connection = redis_connection(),
                              .key_prefix = kind + ":link:",
                              .local_capacity = kind.ends_with("redis_l1") ? 10'000u : 0u});
    options.counter_source = d.counters.get();
    options.cache = d.cache.get();
  }
  d.shortener = std::make_unique<Shortener>(*d.store, options);
  // Warm up (connections opened, a fresh database's first writes, Redis' scripts): untimed.
  for (int i = 0; i < kWarmUpCreates; ++i) {
    d.shortener->create({.url = fmt::format("https://example.com/warm-up/{}", i)});
  }
  return d;
}

void BM_Create(benchmark::State& state, const std::string& kind) {
  static std::atomic<std::uint64_t> next_url{0};
  Shortener& shortener = *deployment(kind).shortener;
  for (auto _ : state) {
    const std::uint64_t n = next_url.fetch_add(1, std::memory_order_relaxed);
    benchmark::DoNotOptimize(
        shortener.create({.url = fmt::format("https://example.com/articles/{}?ref=bench", n)}));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ResolveHot(benchmark::State& state, const std::string& kind) {
  Deployment& d = deployment(kind);
  const std::string code =
      d.shortener->create({.url = "https://example.com/the-hot-one"}).link.code;
  d.shortener->resolve(code);  // loaded into the cache
  for (auto _ : state) benchmark::DoNotOptimize(d.shortener->resolve(code));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_Create, sqlite, std::string("sqlite"))->MinTime(2.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Create, postgres, std::string("postgres"))
    ->MinTime(2.0)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(4);
BENCHMARK_CAPTURE(BM_Create, postgres_redis, std::string("postgres_redis"))
    ->MinTime(2.0)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(4);
BENCHMARK_CAPTURE(BM_ResolveHot, sqlite_in_process, std::string("sqlite_hot"))
    ->UseRealTime()
    ->Threads(1)
    ->Threads(4);
BENCHMARK_CAPTURE(BM_ResolveHot, redis_l1, std::string("postgres_hot_redis_l1"))
    ->UseRealTime()
    ->Threads(1)
    ->Threads(4);
BENCHMARK_CAPTURE(BM_ResolveHot, redis_only, std::string("postgres_hot_redis"))
    ->UseRealTime()
    ->Threads(1)
    ->Threads(4);

}  // namespace
}  // namespace keel::shortener

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  // Before the servers stop (at exit): the Redis caches' subscriptions would report them gone.
  keel::shortener::deployments.clear();
  benchmark::Shutdown();
  return 0;
}
