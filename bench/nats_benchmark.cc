// NATS round trip throughput: messages published on one connection and received on another,
// through a private nats-server on loopback (started here, from tests/support).
//   BM_RawNats        nats.c alone: the ceiling this machine and nats-server allow;
//   BM_RawNatsWithHeaders  the same plus the two headers NatsTransport adds to every message;
//   BM_RawJetStream   nats.c's JetStream publish and acknowledged push subscription alone;
//   BM_KeelCore       EventBus -> NatsTransport (core) -> nats-server -> NatsTransport -> EventBus;
//   BM_KeelJetStream  the same with Mode::jetstream: each publish waits for the stream's
//                     acknowledgement, each delivery is acknowledged.
// Each iteration publishes a window of messages and waits until the subscriber has them all, so
// the figure is the sustained publish+receive rate (items/s = messages/s) with no message lost
// to a slow consumer. Run: build/release/bench/keel_nats_benchmark
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "keel/core/errors.h"
#include "keel/nats/nats_transport.h"
#include "keel/pubsub/event_bus.h"
#include "tests/support/nats_server.h"

namespace keel::nats {
namespace {

constexpr auto kArrivalTimeout = std::chrono::seconds(30);

// The shared server, or nullptr with the reason (each benchmark then skips with it).
testing::NatsServer* server(std::string& error) {
  static std::string start_error;
  static const std::unique_ptr<testing::NatsServer> instance = [] {
    try {
      return testing::NatsServer::start();
    } catch (const std::exception& e) {
      start_error = e.what();
      return std::unique_ptr<testing::NatsServer>();
    }
  }();
  error = start_error;
  return instance.get();
}

// Deliveries so far; the publisher waits for a window to arrive.
class Arrivals {
 public:
  void add() {
    std::lock_guard lock(mutex_);
    if (++count_ >= target_) arrived_.notify_one();
  }
  bool wait_for(std::uint64_t target) {
    std::unique_lock lock(mutex_);
    target_ = target;
    return arrived_.wait_for(lock, kArrivalTimeout, [&] { return count_ >= target_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::uint64_t count_ = 0;       // guarded by mutex_
  std::uint64_t target_ = ~0ULL;  // guarded by mutex_
};

// Publishes `window` messages per iteration with `publish`, then waits for them.
template <typename Publish>
void run_windows(benchmark::State& state, Arrivals& arrivals, std::int64_t window,
                 Publish&& publish) {
  std::uint64_t sent = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < window; ++i) publish();
    sent += static_cast<std::uint64_t>(window);
    if (!arrivals.wait_for(sent)) {
      state.SkipWithError("messages did not arrive within 30 s");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * window);
  state.SetBytesProcessed(state.iterations() * window * state.range(0));
}

// A publishing and a subscribing nats.c connection, with `on_message` subscribed to `subject`.
class RawPair {
 public:
  RawPair(const std::string& url, const char* subject, natsMsgHandler on_message,
          Arrivals& arrivals) {
    ok_ = natsConnection_ConnectTo(&publisher_, url.c_str()) == NATS_OK &&
          natsConnection_ConnectTo(&subscriber_, url.c_str()) == NATS_OK &&
          natsConnection_Subscribe(&sub_, subscriber_, subject, on_message, &arrivals) == NATS_OK &&
          natsConnection_Flush(subscriber_) == NATS_OK;
  }
  ~RawPair() {
    natsSubscription_Destroy(sub_);
    natsConnection_Destroy(subscriber_);
    natsConnection_Destroy(publisher_);
  }
  RawPair(const RawPair&) = delete;
  RawPair& operator=(const RawPair&) = delete;

  bool ok() const { return ok_; }
  natsConnection* publisher() const { return publisher_; }

 private:
  natsConnection* publisher_ = nullptr;
  natsConnection* subscriber_ = nullptr;
  natsSubscription* sub_ = nullptr;
  bool ok_ = false;
};

void BM_RawNats(benchmark::State& state) {
  std::string error;
  testing::NatsServer* nats_server = server(error);
  if (nats_server == nullptr) return state.SkipWithError(error.c_str());
  Arrivals arrivals;
  const RawPair pair(
      nats_server->url(), "bench.raw",
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        natsMsg_Destroy(msg);
        static_cast<Arrivals*>(closure)->add();
      },
      arrivals);
  if (!pair.ok()) return state.SkipWithError("nats.c could not connect or subscribe");
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  run_windows(state, arrivals, state.range(1), [&] {
    natsConnection_Publish(pair.publisher(), "bench.raw", payload.data(),
                           static_cast<int>(payload.size()));
  });
}
BENCHMARK(BM_RawNats)->Args({128, 1000})->Args({1024, 1000})->UseRealTime();

// BM_RawNats plus what NatsTransport adds on the wire: two headers per message (as
// Keel-Sequence and Keel-Published-At), set by the publisher and read by the subscriber. nats.c
// keeps headers in a hash map per message, so this isolates their cost from keel's own.
void BM_RawNatsWithHeaders(benchmark::State& state) {
  std::string error;
  testing::NatsServer* nats_server = server(error);
  if (nats_server == nullptr) return state.SkipWithError(error.c_str());
  Arrivals arrivals;
  const RawPair pair(
      nats_server->url(), "bench.headers",
      [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
        const char* value = nullptr;
        natsMsgHeader_Get(msg, "Keel-Sequence", &value);
        natsMsgHeader_Get(msg, "Keel-Published-At", &value);
        benchmark::DoNotOptimize(value);
        natsMsg_Destroy(msg);
        static_cast<Arrivals*>(closure)->add();
      },
      arrivals);
  if (!pair.ok()) return state.SkipWithError("nats.c could not connect or subscribe");
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  std::uint64_t sequence = 0;
  run_windows(state, arrivals, state.range(1), [&] {
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, "bench.headers", nullptr, payload.data(),
                   static_cast<int>(payload.size()));
    natsMsgHeader_Set(msg, "Keel-Sequence", std::to_string(++sequence).c_str());
    natsMsgHeader_Set(msg, "Keel-Published-At", "1790000000000000000");
    natsConnection_PublishMsg(pair.publisher(), msg);
    natsMsg_Destroy(msg);
  });
}
BENCHMARK(BM_RawNatsWithHeaders)->Args({128, 1000})->UseRealTime();

// nats.c's JetStream API alone: a synchronous js_Publish per message into a memory stream, and a
// push subscription that nats.c acknowledges after each callback.
void BM_RawJetStream(benchmark::State& state) {
  std::string error;
  testing::NatsServer* nats_server = server(error);
  if (nats_server == nullptr) return state.SkipWithError(error.c_str());
  static int run = 0;
  const std::string stream = fmt::format("RAWBENCH{}", ++run);
  const std::string subject = fmt::format("rawjs{}.bench", run);
  natsConnection* publisher = nullptr;
  natsConnection* subscriber = nullptr;
  jsCtx* publisher_js = nullptr;
  jsCtx* subscriber_js = nullptr;
  natsSubscription* sub = nullptr;
  Arrivals arrivals;
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream.c_str();
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_MemoryStorage;
  if (natsConnection_ConnectTo(&publisher, nats_server->url().c_str()) != NATS_OK ||
      natsConnection_ConnectTo(&subscriber, nats_server->url().c_str()) != NATS_OK ||
      natsConnection_JetStream(&publisher_js, publisher, nullptr) != NATS_OK ||
      natsConnection_JetStream(&subscriber_js, subscriber, nullptr) != NATS_OK ||
      js_AddStream(nullptr, publisher_js, &config, nullptr, nullptr) != NATS_OK ||
      js_Subscribe(
          &sub, subscriber_js, subject.c_str(),
          [](natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
            natsMsg_Destroy(msg);
            static_cast<Arrivals*>(closure)->add();
          },
          &arrivals, nullptr, nullptr, nullptr) != NATS_OK) {
    state.SkipWithError("nats.c could not set up JetStream");
  } else {
    run_windows(state, arrivals, state.range(1), [&] {
      js_Publish(nullptr, publisher_js, subject.c_str(), payload.data(),
                 static_cast<int>(payload.size()), nullptr, nullptr);
    });
  }
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(subscriber_js);
  jsCtx_Destroy(publisher_js);
  natsConnection_Destroy(subscriber);
  natsConnection_Destroy(publisher);
}
BENCHMARK(BM_RawJetStream)->Args({128, 100})->UseRealTime();

void run_keel(benchmark::State& state, Mode mode) {
  std::string error;
  testing::NatsServer* nats_server = server(error);
  if (nats_server == nullptr) return state.SkipWithError(error.c_str());
  // JetStream: a fresh stream (and durable) per run, on topics of its own (streams of one
  // server may not share subjects).
  static int run = 0;
  const std::string prefix = fmt::format("bench{}", ++run);
  const NatsTransportOptions options{
      .connection = {.url = nats_server->url()},
      .mode = mode,
      .jetstream = {.stream_prefix = "BENCH_", .storage = Storage::memory}};
  try {
    const auto publisher_nats = std::make_shared<NatsTransport>(options);
    const auto subscriber_nats = std::make_shared<NatsTransport>(options);
    pubsub::EventBus publisher({.transport = publisher_nats});
    pubsub::EventBus subscriber({.transport = subscriber_nats});
    Arrivals arrivals;
    const Subscription sub = subscriber.subscribe(
        prefix + ".*", [&](const pubsub::Message&) { arrivals.add(); }, {.name = "bench"});
    subscriber_nats->flush();
    const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
    const std::string topic = prefix + ".keel";
    run_windows(state, arrivals, state.range(1), [&] { publisher.publish(topic, payload); });
  } catch (const BackendError& e) {
    state.SkipWithError(e.what());
  }
}

void BM_KeelCore(benchmark::State& state) { run_keel(state, Mode::core); }
BENCHMARK(BM_KeelCore)->Args({128, 1000})->Args({1024, 1000})->UseRealTime();

void BM_KeelJetStream(benchmark::State& state) { run_keel(state, Mode::jetstream); }
BENCHMARK(BM_KeelJetStream)->Args({128, 100})->UseRealTime();

}  // namespace
}  // namespace keel::nats

BENCHMARK_MAIN();
