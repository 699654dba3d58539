// NatsTransport against a real nats-server with JetStream (tests/support): buses in two
// "processes" (two connections) see each other, patterns map onto NATS subjects, headers travel,
// a durable subscriber that was away gets what it missed, failures are redelivered and then
// dead-lettered, and a restarted server is reconnected to.
#include "keel/nats/nats_transport.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/core/errors.h"
#include "keel/pubsub/event_bus.h"
#include "tests/support/free_port.h"
#include "tests/support/nats_server.h"
#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::nats {
namespace {

using pubsub::DeadLetter;
using pubsub::EventBus;
using pubsub::Headers;
using pubsub::Message;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

// Network delivery takes milliseconds; this only bounds a wait for something that must happen.
constexpr auto kDeliveryTimeout = std::chrono::seconds(10);

// Messages one subscription received, from the transport's threads.
class Inbox {
 public:
  pubsub::Handler handler() {
    return [this](const Message& message) {
      std::lock_guard lock(mutex_);
      messages_.push_back(message);
    };
  }
  std::vector<Message> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::vector<std::string> topics() const {
    std::vector<std::string> out;
    for (const Message& m : messages()) out.push_back(m.topic);
    return out;
  }
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const Message& m : messages()) out.push_back(m.payload);
    return out;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  // True once `count` messages arrived (within the delivery timeout).
  bool wait_for(std::size_t count) const {
    return testing::wait_until([&] { return size() >= count; }, kDeliveryTimeout,
                               std::chrono::milliseconds(5));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
};

class NatsTransportTest : public ::testing::Test {
 protected:
  // One server for the suite; a failed start fails every test with the reason (never a skip).
  static void SetUpTestSuite() {
    try {
      server_ = testing::NatsServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start nats-server: " << start_error_;
  }

  // A transport of its own ("another process"). Each test has its own stream prefix, so that
  // JetStream state of one test never reaches another.
  std::shared_ptr<NatsTransport> connect(Mode mode = Mode::core) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    NatsTransportOptions options{.connection = {.url = server_->url(), .name = info->name()},
                                 .mode = mode,
                                 .jetstream = {.stream_prefix = fmt::format("T{}_", info->name())}};
    return std::make_shared<NatsTransport>(options);
  }

  static inline std::unique_ptr<testing::NatsServer> server_;
  static inline std::string start_error_;
};

TEST_F(NatsTransportTest, TwoBusesOnTwoConnectionsSeeEachOthersPublishes) {
  const auto nats_a = connect();
  const auto nats_b = connect();
  EventBus bus_a({.transport = nats_a});
  EventBus bus_b({.delivery = pubsub::Delivery::asynchronous, .transport = nats_b});
  Inbox inbox_a, inbox_b;
  const Subscription sub_a = bus_a.subscribe("orders.*", inbox_a.handler());
  const Subscription sub_b = bus_b.subscribe("orders.*", inbox_b.handler());
  nats_a->flush();  // the server has both subscriptions before anything is published
  nats_b->flush();

  EXPECT_EQ(bus_a.publish("orders.created", R"({"id":1})"), 1U) << "bus_a's own subscription";
  bus_b.publish("orders.shipped", R"({"id":1})");

  ASSERT_TRUE(inbox_a.wait_for(2)) << "bus_a got " << inbox_a.size() << " of 2";
  ASSERT_TRUE(inbox_b.wait_for(2)) << "bus_b got " << inbox_b.size() << " of 2";
  EXPECT_THAT(inbox_a.topics(), UnorderedElementsAre("orders.created", "orders.shipped"));
  EXPECT_THAT(inbox_b.topics(), UnorderedElementsAre("orders.created", "orders.shipped"));
  EXPECT_EQ(bus_a.metrics().published, 1U);
  // The asynchronous worker counts a delivery after its handler returns: wait for the count.
  EXPECT_TRUE(
      testing::wait_until([&] { return bus_b.metrics().delivered == 2U; }, kDeliveryTimeout))
      << "delivered by bus_b's asynchronous workers: " << bus_b.metrics().delivered;
  EXPECT_EQ(nats_b->metrics().received, 2U);
}

TEST_F(NatsTransportTest, WildcardsMapToSubjectsAndHashIsFilteredLocally) {
  const auto publisher_nats = connect();
  const auto subscriber_nats = connect();
  EventBus publisher({.transport = publisher_nats});
  EventBus subscriber({.transport = subscriber_nats});
  Inbox star, tail, hash_tail, hash_head, hash_inner;
  std::vector<Subscription> subs;
  subs.push_back(subscriber.subscribe("orders.*", star.handler()));
  subs.push_back(subscriber.subscribe("orders.>", tail.handler()));
  subs.push_back(subscriber.subscribe("orders.#", hash_tail.handler()));
  subs.push_back(subscriber.subscribe("#.eu", hash_head.handler()));
  subs.push_back(subscriber.subscribe("orders.#.eu", hash_inner.handler()));
  subscriber_nats->flush();

  for (const char* topic : {"orders", "orders.created", "orders.created.eu", "eu", "payments.eu",
                            "orders.end.eu", "orders.end"}) {
    publisher.publish(topic, "x");
  }
  publisher_nats->flush();

  ASSERT_TRUE(star.wait_for(2) && tail.wait_for(4) && hash_tail.wait_for(5) &&
              hash_head.wait_for(4) && hash_inner.wait_for(2));
  // '#.eu' listens on '>' and 'orders.#.eu' on 'orders.>': what they do not match is dropped.
  ASSERT_TRUE(testing::wait_until([&] { return subscriber_nats->metrics().filtered == 5; },
                                  kDeliveryTimeout))
      << "filtered " << subscriber_nats->metrics().filtered << ", expected 3 for '#.eu' "
      << "(orders, orders.created, orders.end) and 2 for 'orders.#.eu'";
  EXPECT_THAT(star.topics(), ElementsAre("orders.created", "orders.end"));
  EXPECT_THAT(tail.topics(),
              ElementsAre("orders.created", "orders.created.eu", "orders.end.eu", "orders.end"));
  EXPECT_THAT(hash_tail.topics(),
              UnorderedElementsAre("orders", "orders.created", "orders.created.eu", "orders.end.eu",
                                   "orders.end"))
      << "'orders.#' also matches 'orders' itself (its own NATS subscription)";
  EXPECT_THAT(hash_head.topics(),
              ElementsAre("orders.created.eu", "eu", "payments.eu", "orders.end.eu"));
  EXPECT_THAT(hash_inner.topics(), ElementsAre("orders.created.eu", "orders.end.eu"));
}

TEST_F(NatsTransportTest, HandlerThatUnsubscribesItselfIsNotCalledAgain) {
  const auto publisher_nats = connect();
  const auto subscriber_nats = connect();
  EventBus publisher({.transport = publisher_nats});
  EventBus subscriber({.transport = subscriber_nats});
  std::mutex mutex;
  Subscription sub;  // guarded by mutex
  std::atomic<int> calls{0};
  {
    std::lock_guard lock(mutex);
    sub = subscriber.subscribe("once.*", [&](const Message&) {
      ++calls;
      std::lock_guard guard(mutex);
      sub.unsubscribe();  // from the transport's own thread, inside the handler
    });
  }
  subscriber_nats->flush();
  for (int i = 0; i < 3; ++i) publisher.publish("once.ping", "x");
  publisher_nats->flush();
  ASSERT_TRUE(testing::wait_until([&] { return calls.load() >= 1; }, kDeliveryTimeout));
  subscriber_nats->flush();  // the server has sent everything it had for this connection
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(subscriber.metrics().subscriptions, 0U);
}

TEST_F(NatsTransportTest, HeadersSequenceAndPublishTimeTravelWithTheMessage) {
  const auto nats_a = connect();
  const auto nats_b = connect();
  EventBus publisher({.transport = nats_a});
  EventBus subscriber({.transport = nats_b});
  Inbox inbox;
  const Subscription sub = subscriber.subscribe("audit.>", inbox.handler());
  nats_b->flush();

  publisher.publish("audit.first", "warm-up");
  const std::string payload("bytes\0with a NUL", 16);
  const Headers headers{{"trace-id", "abc-123"},
                        {"content-type", "application/octet-stream"},
                        {"x-multi", "1"},
                        {"x-multi", "2"},
                        {"x-error", "line one\nline two"}};
  const TimePoint before = default_clock().now();
  publisher.publish("audit.login", payload, headers);
  ASSERT_TRUE(inbox.wait_for(2));

  const Message received = inbox.messages().back();
  EXPECT_EQ(received.topic, "audit.login");
  EXPECT_EQ(received.payload, payload);
  EXPECT_THAT(
      received.headers,
      ElementsAre(std::pair<std::string, std::string>{"content-type", "application/octet-stream"},
                  std::pair<std::string, std::string>{"trace-id", "abc-123"},
                  std::pair<std::string, std::string>{"x-error", "line one line two"},
                  std::pair<std::string, std::string>{"x-multi", "1"},
                  std::pair<std::string, std::string>{"x-multi", "2"}))
      << "sorted by key, keel's own Keel-* headers removed, CR/LF in values made spaces";
  EXPECT_EQ(received.sequence, 2U) << "the publishing bus's sequence";
  EXPECT_EQ(inbox.messages().front().sequence, 1U);
  // Same machine, same clock: the publish time comes back close to when it was published. Not
  // to the microsecond: each side reads the wall clock and the monotonic clock one after the
  // other, and a thread preempted between the two reads (often, under TSan on two cores) shifts
  // the result by the pause. It never comes back later than it arrived (the age is clamped).
  EXPECT_GE(received.published_at, before - std::chrono::seconds(1));
  EXPECT_LE(received.published_at, default_clock().now());
}

TEST_F(NatsTransportTest, InvalidHeaderKeyIsRefusedBeforeAnythingIsSent) {
  const auto nats = connect();
  EventBus bus({.transport = nats});
  EXPECT_THROW(bus.publish("audit.x", "x", {{"bad key", "v"}}), std::invalid_argument);
  EXPECT_THROW(bus.publish("audit.x", "x", {{"bad:key", "v"}}), std::invalid_argument);
  EXPECT_EQ(bus.metrics().published, 0U);
  EXPECT_EQ(nats->metrics().published, 0U);
}

TEST_F(NatsTransportTest, DurableSubscriberGetsWhatWasPublishedWhileItWasAway) {
  const auto publisher_nats = connect(Mode::jetstream);
  EventBus publisher({.transport = publisher_nats});
  Inbox first_life;
  {
    const auto nats = connect(Mode::jetstream);  // the subscriber's first process
    EventBus bus({.transport = nats});
    const Subscription sub = bus.subscribe("billing.*", first_life.handler(), {.name = "invoicer"});
    publisher.publish("billing.invoice", "0");
    ASSERT_TRUE(first_life.wait_for(1));
    ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().acks == 1; }, kDeliveryTimeout));
  }  // the subscriber stops: subscription, bus and connection go

  for (int i = 1; i <= 20; ++i) publisher.publish("billing.invoice", std::to_string(i));

  const auto nats = connect(Mode::jetstream);  // the subscriber's next process
  EventBus bus({.transport = nats});
  Inbox second_life;
  const Subscription sub = bus.subscribe("billing.*", second_life.handler(), {.name = "invoicer"});
  ASSERT_TRUE(second_life.wait_for(20)) << "got " << second_life.size() << " of 20";
  std::vector<std::string> expected;
  for (int i = 1; i <= 20; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(second_life.payloads(), expected) << "every missed message, in order, none twice";
  EXPECT_THAT(first_life.payloads(), ElementsAre("0"));
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().acks == 20; }, kDeliveryTimeout));
}

TEST_F(NatsTransportTest, QueuedDurableMessagesGoBackWhenTheSubscriptionEnds) {
  const auto nats = connect(Mode::jetstream);
  EventBus bus({.delivery = pubsub::Delivery::asynchronous, .transport = nats});
  Inbox first;
  std::mutex mutex;
  Subscription sub;  // guarded by mutex
  {
    std::lock_guard lock(mutex);
    sub = bus.subscribe("mail.*",
                        [&](const Message& message) {
                          first.handler()(message);
                          if (message.payload != "1") return;
                          // With the other four queued behind it, the subscription ends from its
                          // own handler.
                          testing::wait_until(
                              [&] { return bus.subscriptions().front().queue_depth == 4; },
                              kDeliveryTimeout);
                          std::lock_guard guard(mutex);
                          sub.unsubscribe();
                        },
                        {.name = "mailer"});
  }
  for (int i = 1; i <= 5; ++i) bus.publish("mail.send", std::to_string(i));
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().naks == 4; }, kDeliveryTimeout))
      << "the four queued messages go back to JetStream; naks: " << nats->metrics().naks;
  EXPECT_EQ(bus.metrics().dropped, 0U) << "nothing is lost";
  EXPECT_THAT(first.payloads(), ElementsAre("1"));

  Inbox second;
  const Subscription again = bus.subscribe("mail.*", second.handler(), {.name = "mailer"});
  ASSERT_TRUE(second.wait_for(4)) << "got " << second.size() << " of 4";
  EXPECT_THAT(second.payloads(), ElementsAre("2", "3", "4", "5"));
}

TEST_F(NatsTransportTest, DurableNameOfAnotherPatternIsRefused) {
  const auto nats = connect(Mode::jetstream);
  EventBus bus({.transport = nats});
  Inbox inbox;
  bus.subscribe("news.sports", inbox.handler(), {.name = "reader"}).unsubscribe();
  EXPECT_THROW(bus.subscribe("news.weather", inbox.handler(), {.name = "reader"}), BackendError);
}

TEST_F(NatsTransportTest, DurableNameInUseElsewhereIsRefused) {
  const auto nats_a = connect(Mode::jetstream);
  const auto nats_b = connect(Mode::jetstream);
  EventBus bus_a({.transport = nats_a});
  EventBus bus_b({.transport = nats_b});
  Inbox inbox;
  const Subscription sub = bus_a.subscribe("press.*", inbox.handler(), {.name = "reader"});
  nats_a->flush();
  EXPECT_THROW(bus_b.subscribe("press.*", inbox.handler(), {.name = "reader"}), BackendError)
      << "one active subscription per durable name";
}

TEST_F(NatsTransportTest, DurableHashPatternsAreFilteredLocally) {
  const auto nats = connect(Mode::jetstream);
  EventBus bus({.transport = nats});
  Inbox inner, tail;
  // One subject ("ship.>") filtered by the consumer, the rest here.
  const Subscription sub_inner =
      bus.subscribe("ship.#.eu", inner.handler(), {.name = "eu-shipping"});
  // Two subjects ("ship.*", "ship.*.>"): the consumer takes the whole stream.
  const Subscription sub_tail = bus.subscribe("ship.*.#", tail.handler(), {.name = "below-ship"});
  for (const char* topic : {"ship.eu", "ship.created", "ship.created.eu", "ship"}) {
    bus.publish(topic, "x");
  }
  ASSERT_TRUE(inner.wait_for(2) && tail.wait_for(3));
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().filtered == 2; }, kDeliveryTimeout))
      << "filtered " << nats->metrics().filtered
      << ", expected ship.created for 'ship.#.eu' and ship for 'ship.*.#'";
  EXPECT_THAT(inner.topics(), ElementsAre("ship.eu", "ship.created.eu"));
  EXPECT_THAT(tail.topics(), ElementsAre("ship.eu", "ship.created", "ship.created.eu"));
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().acks == 7; }, kDeliveryTimeout))
      << "every message settled, the filtered ones included";
  EXPECT_THROW(bus.subscribe("*.eu", inner.handler(), {.name = "any"}), std::invalid_argument)
      << "a durable pattern's first token names its stream";
}

TEST_F(NatsTransportTest, StreamsOfTwoPrefixesCannotShareATopic) {
  const auto first = connect(Mode::jetstream);
  EventBus bus({.transport = first});
  bus.publish("ledger.entry", "1");
  NatsTransportOptions options{.connection = {.url = server_->url()},
                               .mode = Mode::jetstream,
                               .jetstream = {.stream_prefix = "OTHER_"}};
  EventBus other({.transport = std::make_shared<NatsTransport>(options)});
  try {
    other.publish("ledger.entry", "2");
    FAIL() << "a second stream took the subjects of the first";
  } catch (const BackendError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("another stream holds 'ledger'"));
  }
  EXPECT_EQ(other.metrics().published, 0U);
}

TEST_F(NatsTransportTest, FailedMessageIsRedeliveredThenDeadLettered) {
  const auto nats = connect(Mode::jetstream);
  std::mutex mutex;
  std::vector<DeadLetter> dead;
  EventBus bus({.dead_letter_handler =
                    [&](const DeadLetter& letter) {
                      std::lock_guard lock(mutex);
                      dead.push_back(letter);
                    },
                .transport = nats});
  std::atomic<int> poison_calls{0}, flaky_calls{0};
  Inbox done;
  const Subscription sub = bus.subscribe(
      "jobs.*",
      [&](const Message& message) {
        if (message.topic == "jobs.poison") {
          ++poison_calls;
          throw std::runtime_error("cannot process");
        }
        if (++flaky_calls == 1) throw std::runtime_error("try again");
        done.handler()(message);
      },
      {.name = "worker",
       .retry = {
           .initial = std::chrono::milliseconds(20), .max_attempts = 3, .jitter = Jitter::none}});

  bus.publish("jobs.poison", "p");
  bus.publish("jobs.flaky", "f");

  ASSERT_TRUE(done.wait_for(1)) << "the flaky job succeeds on its redelivery";
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::lock_guard lock(mutex);
        return !dead.empty();
      },
      kDeliveryTimeout));
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(dead.size(), 1U);
    EXPECT_EQ(dead[0].message.topic, "jobs.poison");
    EXPECT_EQ(dead[0].attempts, 3) << "JetStream's delivery count";
    EXPECT_EQ(dead[0].error, "cannot process");
    EXPECT_EQ(dead[0].subscription, "worker");
  }
  EXPECT_EQ(poison_calls.load(), 3);
  EXPECT_EQ(flaky_calls.load(), 2);
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().terms == 1; }, kDeliveryTimeout));
  const NatsMetrics m = nats->metrics();
  EXPECT_EQ(m.naks, 3U) << "two for the poison job, one for the flaky one";
  EXPECT_EQ(m.acks, 1U);
  const pubsub::BusMetrics b = bus.metrics();
  EXPECT_EQ(b.failed, 4U);
  EXPECT_EQ(b.retried, 3U);
  EXPECT_EQ(b.dead_lettered, 1U);
  EXPECT_EQ(b.delivered, 1U);
}

TEST_F(NatsTransportTest, ConnectingToNoServerThrowsBackendError) {
  const std::uint16_t port = testing::free_loopback_port();
  try {
    NatsTransport nats({.connection = {.url = fmt::format("nats://127.0.0.1:{}", port),
                                       .connect_timeout = std::chrono::milliseconds(500)}});
    FAIL() << "connected to a port nobody listens on";
  } catch (const BackendError& e) {
    EXPECT_EQ(e.backend(), "nats");
    EXPECT_THAT(e.what(), ::testing::HasSubstr("connect to nats://127.0.0.1:"));
  }
}

// A nats-server of this test's own, so that it can be stopped and started again on one port.
class RestartableServer {
 public:
  RestartableServer()
      : program_(testing::require_program("nats-server", "nats-server",
                                          testing::standard_program_dirs())),
        port_(testing::free_loopback_port()) {
    start();
  }
  void start() {
    process_ = testing::ChildProcess::spawn(
        {program_.string(), "-a", "127.0.0.1", "-p", std::to_string(port_)},
        dir_.path() / "nats.log");
  }
  void stop() { process_.stop(); }
  std::string url() const { return fmt::format("nats://127.0.0.1:{}", port_); }

 private:
  testing::TempDir dir_{"keel-nats-restart"};
  std::filesystem::path program_;
  std::uint16_t port_;
  testing::ChildProcess process_;
};

TEST_F(NatsTransportTest, ReconnectsAfterTheServerRestartsAndCountsIt) {
  RestartableServer server;
  std::shared_ptr<NatsTransport> nats;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        try {
          nats = std::make_shared<NatsTransport>(NatsTransportOptions{
              .connection = {.url = server.url(),
                             .reconnect_wait = std::chrono::milliseconds(50)}});
          return true;
        } catch (const BackendError&) {
          return false;  // not listening yet
        }
      },
      kDeliveryTimeout));
  EventBus bus({.transport = nats});
  Inbox inbox;
  const Subscription sub = bus.subscribe("health.*", inbox.handler());
  bus.publish("health.before", "1");
  ASSERT_TRUE(inbox.wait_for(1));

  server.stop();
  ASSERT_TRUE(testing::wait_until([&] { return !nats->connected(); }, kDeliveryTimeout));
  server.start();
  ASSERT_TRUE(testing::wait_until([&] { return nats->metrics().reconnects == 1; },
                                  std::chrono::seconds(20)))
      << "reconnects: " << nats->metrics().reconnects;
  EXPECT_TRUE(nats->connected());
  EXPECT_EQ(nats->metrics().disconnects, 1U);

  // The subscription made before the outage was re-established by the reconnect.
  bus.publish("health.after", "2");
  ASSERT_TRUE(inbox.wait_for(2));
  EXPECT_THAT(inbox.topics(), ElementsAre("health.before", "health.after"));
}

}  // namespace
}  // namespace keel::nats
