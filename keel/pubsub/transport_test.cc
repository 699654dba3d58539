// The bus on a Transport, without a server: a loopback transport in this file plays the engine,
// so that what the bus asks of a transport (publish, subscribe, ack / nak / term) is pinned
// exactly, on a manual clock. keel/nats/nats_transport_test.cc runs the same paths on NATS.
#include "keel/pubsub/transport.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/pubsub/event_bus.h"

namespace keel::pubsub {
namespace {

using std::chrono::milliseconds;

// Records how the bus settled each message, as "ack #3", "nak #3 200ms", "term #3".
class Settlements {
 public:
  class Recorder final : public Acknowledgement {
   public:
    Recorder(Settlements& log, std::uint64_t sequence) : log_(log), sequence_(sequence) {}
    void ack() noexcept override { log_.add("ack", sequence_, ""); }
    void nak(Duration delay) noexcept override {
      log_.add("nak", sequence_,
               fmt::format(" {}ms", std::chrono::duration_cast<milliseconds>(delay).count()));
    }
    void term() noexcept override { log_.add("term", sequence_, ""); }

   private:
    Settlements& log_;
    std::uint64_t sequence_;
  };

  std::vector<std::string> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }

 private:
  void add(const char* what, std::uint64_t sequence, const std::string& detail) {
    std::lock_guard lock(mutex_);
    entries_.push_back(fmt::format("{} #{}{}", what, sequence, detail));
  }
  mutable std::mutex mutex_;
  std::vector<std::string> entries_;
};

// Delivers every publish to its matching subscriptions at once, in the publisher's thread, like
// an engine with no latency. When `redelivers`, each message comes with an Acknowledgement and
// deliver() plays the engine's redelivery. Subscribing and unsubscribing are thread-safe;
// publish() and deliver() are called from the test's thread.
class LoopbackTransport final : public Transport {
 public:
  explicit LoopbackTransport(bool redelivers) : redelivers_(redelivers) {}

  void publish(const Message& message) override {
    published.push_back(message);
    deliver(message, 1);
  }

  Subscription subscribe(std::string_view pattern, const SubscribeOptions& options,
                         Receiver receive) override {
    std::lock_guard lock(mutex_);
    const int id = next_id_++;
    receivers_[id] = {std::string(pattern), std::move(receive)};
    names.push_back(options.name);
    return Subscription([this, id] {
      std::lock_guard guard(mutex_);
      receivers_.erase(id);
    });
  }

  // The engine delivers `message` again, as delivery number `attempt`.
  void deliver(const Message& message, int attempt) {
    std::map<int, std::pair<std::string, Receiver>> receivers;
    {
      std::lock_guard lock(mutex_);
      receivers = receivers_;
    }
    for (auto& [id, receiver] : receivers) {
      if (!topic_matches(receiver.first, message.topic)) continue;
      Incoming incoming{message, attempt, nullptr};
      if (redelivers_) {
        incoming.acknowledgement =
            std::make_shared<Settlements::Recorder>(settlements, message.sequence);
      }
      receiver.second(std::move(incoming));
    }
  }

  std::size_t subscriptions() const {
    std::lock_guard lock(mutex_);
    return receivers_.size();
  }

  std::vector<Message> published;
  std::vector<std::string> names;  // SubscribeOptions::name as the transport saw it
  Settlements settlements;

 private:
  bool redelivers_;
  mutable std::mutex mutex_;
  int next_id_ = 0;                                            // guarded by mutex_
  std::map<int, std::pair<std::string, Receiver>> receivers_;  // guarded by mutex_
};

class TransportTest : public ::testing::Test {
 protected:
  EventBus make(std::shared_ptr<LoopbackTransport> transport, BusOptions options = {}) {
    options.clock = &clock_;
    options.scheduler = &scheduler_;
    options.transport = std::move(transport);
    return EventBus(std::move(options));
  }
  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
};

TEST_F(TransportTest, PublishGoesThroughTheTransportAndArrivalsReachTheHandlers) {
  auto transport = std::make_shared<LoopbackTransport>(false);
  EventBus bus = make(transport);
  std::vector<std::string> seen;
  const Subscription sub =
      bus.subscribe("orders.*", [&](const Message& m) { seen.push_back(m.payload); });
  EXPECT_EQ(transport->names, std::vector<std::string>{"orders.*"}) << "the name, resolved";

  EXPECT_EQ(bus.publish("orders.created", "1", {{"trace-id", "t"}}), 1U);
  EXPECT_EQ(bus.publish("payments.settled", "2"), 0U);

  ASSERT_EQ(transport->published.size(), 2U) << "every publish goes to the transport";
  EXPECT_EQ(transport->published[0].headers, (Headers{{"trace-id", "t"}}));
  EXPECT_EQ(transport->published[0].sequence, 1U);
  EXPECT_EQ(seen, std::vector<std::string>{"1"});
  EXPECT_EQ(bus.metrics().published, 2U);
  EXPECT_EQ(bus.metrics().delivered, 1U);
}

TEST_F(TransportTest, WithoutRedeliveryTheBusRetriesOnItsScheduler) {
  auto transport = std::make_shared<LoopbackTransport>(false);
  EventBus bus = make(transport);
  int calls = 0;
  const Subscription sub = bus.subscribe(
      "jobs.run",
      [&](const Message&) {
        if (++calls == 1) throw std::runtime_error("flaky");
      },
      {.retry = {.initial = milliseconds(100), .max_attempts = 2, .jitter = Jitter::none}});
  bus.publish("jobs.run", "x");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(scheduler_.pending(), 1U) << "an at-most-once transport leaves retries to the bus";
  clock_.advance(milliseconds(100));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(bus.metrics().delivered, 1U);
}

TEST_F(TransportTest, RedeliveringTransportIsAckedNakedWithBackoffThenTerminated) {
  auto transport = std::make_shared<LoopbackTransport>(true);
  std::vector<DeadLetter> dead;
  EventBus bus =
      make(transport, {.dead_letter_handler = [&](const DeadLetter& d) { dead.push_back(d); }});
  const Subscription sub = bus.subscribe(
      "jobs.*",
      [](const Message& m) {
        if (m.topic == "jobs.poison") throw std::runtime_error("cannot");
      },
      {.retry = {.initial = milliseconds(100), .max_attempts = 3, .jitter = Jitter::none}});

  bus.publish("jobs.fine", "1");
  bus.publish("jobs.poison", "2");
  const Message poison = transport->published.back();
  transport->deliver(poison, 2);  // the engine redelivers after the nak's delay
  transport->deliver(poison, 3);

  EXPECT_EQ(transport->settlements.entries(),
            (std::vector<std::string>{"ack #1", "nak #2 100ms", "nak #2 200ms", "term #2"}))
      << "the retry policy's delays, then the dead letter ends the redeliveries";
  EXPECT_EQ(scheduler_.pending(), 0U) << "the engine redelivers, not the bus's scheduler";
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0].attempts, 3) << "the transport's delivery count";
  const BusMetrics m = bus.metrics();
  EXPECT_EQ(m.retried, 2U);
  EXPECT_EQ(m.failed, 3U);
  EXPECT_EQ(m.dead_lettered, 1U);
}

TEST_F(TransportTest, RedeliveryBeyondMaxAttemptsStillRunsTheHandlerOnce) {
  auto transport = std::make_shared<LoopbackTransport>(true);
  EventBus bus = make(transport);
  int calls = 0;
  const Subscription sub = bus.subscribe("jobs.*", [&](const Message&) { ++calls; });
  // A delivery whose handler never returned (a crash) comes back with a higher count.
  transport->deliver(Message{"jobs.run", "x", 7, {}, {}}, 4);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(transport->settlements.entries(), std::vector<std::string>{"ack #7"});
}

TEST_F(TransportTest, UnsubscribedBacklogGoesBackToTheTransportInsteadOfBeingDropped) {
  auto transport = std::make_shared<LoopbackTransport>(true);
  EventBus bus = make(transport, {.delivery = Delivery::asynchronous, .workers = 1});
  std::mutex gate;
  std::unique_lock hold(gate);  // the worker waits in the first handler call
  Subscription sub = bus.subscribe("mail.*", [&](const Message&) { std::lock_guard lock(gate); });
  for (int i = 0; i < 4; ++i) bus.publish("mail.send", "x");
  while (bus.subscriptions().front().queue_depth != 3) std::this_thread::yield();

  std::thread ender([&] { sub.unsubscribe(); });
  while (transport->subscriptions() != 0) std::this_thread::yield();  // the transport side ended
  hold.unlock();  // the handler in flight finishes; the bus side ends
  ender.join();

  std::vector<std::string> entries = transport->settlements.entries();
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries,
            (std::vector<std::string>{"ack #1", "nak #2 0ms", "nak #3 0ms", "nak #4 0ms"}));
  EXPECT_EQ(bus.metrics().dropped, 0U);
}

}  // namespace
}  // namespace keel::pubsub
