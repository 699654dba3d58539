// The notifier end to end with a no-op provider (docs/notification_system.md, "Figures"):
//
//   BM_Accept/<store>          submit() alone (workers stopped): notifications accepted per second
//   BM_EndToEnd/<store>        batches of 500 submitted and waited for until every delivery is
//                              sent: notifications accepted and delivered per second
//   BM_CriticalUnderBacklog/<store>
//                              accept → sent latency of one critical notification while 20,000
//                              normal ones wait in the queue (manual time per critical; the
//                              counter backlog_left says the backlog was still there at the end)
//
//   ninja -C build/release keel_notifier_benchmark && build/release/bench/keel_notifier_benchmark
//
// SQLite runs on a file in $TMPDIR (WAL, synchronous=NORMAL); PostgreSQL is the test server from
// tests/support (loopback, fsync off), so its figure is round trips, not the disk.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/json/parse.hpp>

#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/sqlite_store.h"
#include "tests/support/temp_dir.h"
#ifdef KEEL_BENCH_POSTGRES
#include "case_studies/notification_system/postgres_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;

class NoopProvider final : public Provider {
 public:
  std::string_view name() const noexcept override { return "noop"; }
  SendResult send(const Message&) override { return {}; }
};

std::unique_ptr<Dispatcher> noop_dispatcher() {
  auto noop = std::make_shared<NoopProvider>();
  std::map<Channel, ChannelProviders> providers;
  for (const Channel c : {Channel::email, Channel::sms, Channel::push, Channel::webhook}) {
    providers[c] = {noop};
  }
  return make_dispatcher(std::move(providers));
}

// A fresh store per benchmark run.
struct Storage {
  keel::testing::TempDir dir{"keel-notifier-bench"};
  std::unique_ptr<NotificationStore> store;
};

#ifdef KEEL_BENCH_POSTGRES
keel::testing::PostgresServer& postgres() {
  static const std::unique_ptr<keel::testing::PostgresServer> server =
      keel::testing::PostgresServer::start();
  return *server;
}
#endif

std::unique_ptr<Storage> open_storage(bool use_postgres) {
  auto storage = std::make_unique<Storage>();
  static std::atomic<int> databases{0};
  if (use_postgres) {
#ifdef KEEL_BENCH_POSTGRES
    storage->store = std::make_unique<PostgresNotificationStore>(
        postgres().create_database(fmt::format("bench_{}", databases.fetch_add(1))),
        PostgresStoreOptions{.connections = 8});
#endif
  } else {
    storage->store = std::make_unique<SqliteNotificationStore>(
        (storage->dir.path() / fmt::format("bench-{}.db", databases.fetch_add(1))).string());
  }
  for (int u = 0; u < 100; ++u) {
    storage->store->update_contacts(fmt::format("user-{}", u),
                                    [](Contacts& c) { c.email = "user@example.com"; });
  }
  return storage;
}

NotifierOptions bench_options() {
  NotifierOptions o;
  o.critical_workers = {.threads = 2};
  o.standard_workers = {.threads = 4};
  o.poll_interval = 100ms;
  o.user_limit = {.algorithm = ratelimit::Algorithm::token_bucket,
                  .rate_per_second = 1e9,
                  .amount = 1'000'000'000};
  return o;
}

NotificationRequest request(Priority priority, std::int64_t i) {
  NotificationRequest r;
  r.user_id = fmt::format("user-{}", i % 100);
  r.channels = {Channel::email};
  r.priority = priority;
  r.category = "billing";
  r.subject = "Invoice";
  r.body = fmt::format("Invoice {} is ready", i);
  return r;
}

void BM_Accept(benchmark::State& state, bool use_postgres) {
  const auto storage = open_storage(use_postgres);
  if (!storage->store) return state.SkipWithError("PostgreSQL not built");
  const auto dispatcher = noop_dispatcher();
  Notifier notifier(*storage->store, *dispatcher, bench_options());  // not started
  std::int64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(notifier.submit(request(Priority::normal, ++i)));
  state.SetItemsProcessed(state.iterations());
}

void BM_EndToEnd(benchmark::State& state, bool use_postgres) {
  constexpr int kBatch = 500;
  const auto storage = open_storage(use_postgres);
  if (!storage->store) return state.SkipWithError("PostgreSQL not built");
  const auto dispatcher = noop_dispatcher();
  Notifier notifier(*storage->store, *dispatcher, bench_options());
  notifier.start();
  std::int64_t i = 0;
  for (auto _ : state) {
    const std::uint64_t target = notifier.metrics().sent + kBatch;
    for (int n = 0; n < kBatch; ++n) notifier.submit(request(Priority::normal, ++i));
    while (notifier.metrics().sent < target) std::this_thread::sleep_for(200us);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  notifier.stop();
}

void BM_CriticalUnderBacklog(benchmark::State& state, bool use_postgres) {
  constexpr int kBacklog = 20'000;
  const auto storage = open_storage(use_postgres);
  if (!storage->store) return state.SkipWithError("PostgreSQL not built");
  const auto dispatcher = noop_dispatcher();
  pubsub::EventBus bus;
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t critical_sent = 0;
  const Subscription watch = bus.subscribe("notifier.delivery.sent", [&](const pubsub::Message& m) {
    if (boost::json::parse(m.payload).at("priority").as_string() != "critical") return;
    std::lock_guard lock(mu);
    ++critical_sent;
    cv.notify_all();
  });
  NotifierOptions options = bench_options();
  options.events = &bus;
  Notifier notifier(*storage->store, *dispatcher, options);
  {
    // The backlog is submitted by 8 threads (a PostgreSQL round trip each is the cost).
    std::vector<std::thread> fillers;
    for (int t = 0; t < 8; ++t) {
      fillers.emplace_back([&, t] {
        for (int n = t; n < kBacklog; n += 8) notifier.submit(request(Priority::normal, n));
      });
    }
    for (std::thread& f : fillers) f.join();
  }
  notifier.start();
  std::int64_t i = kBacklog;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mu);
    const std::uint64_t target = critical_sent + 1;
    lock.unlock();
    notifier.submit(request(Priority::critical, ++i));
    lock.lock();
    cv.wait(lock, [&] { return critical_sent >= target; });
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.counters["backlog_left"] =
      static_cast<double>(kBacklog) - static_cast<double>(notifier.metrics().sent - critical_sent);
  notifier.stop();
}

BENCHMARK_CAPTURE(BM_Accept, sqlite, false)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EndToEnd, sqlite, false)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_CriticalUnderBacklog, sqlite, false)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(100);
#ifdef KEEL_BENCH_POSTGRES
BENCHMARK_CAPTURE(BM_Accept, postgres, true)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EndToEnd, postgres, true)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_CriticalUnderBacklog, postgres, true)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(100);
#endif

}  // namespace
}  // namespace keel::notifier

BENCHMARK_MAIN();
