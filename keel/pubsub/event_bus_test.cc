// The event bus with synchronous delivery, on a manual clock and a manual scheduler.
#include "keel/pubsub/event_bus.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::pubsub {
namespace {

using std::chrono::milliseconds;

class EventBusTest : public ::testing::Test {
 protected:
  EventBus make(BusOptions options = {}) {
    options.clock = &clock_;
    options.scheduler = &scheduler_;
    return EventBus(std::move(options));
  }
  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
};

TEST_F(EventBusTest, TheOrdersExampleWorksAsWritten) {
  EventBus bus = make();
  std::vector<std::string> emails, analytics;
  auto send_confirmation_email = [&](const Message& m) { emails.push_back(m.payload); };
  auto track = [&](const Message& m) { analytics.push_back(m.topic); };
  Subscription s1 = bus.subscribe("orders.created", send_confirmation_email);
  Subscription s2 = bus.subscribe("orders.*", track);
  EXPECT_EQ(bus.publish("orders.created", R"({"order_id":"ORD-001","amount":99.99})"), 2U);
  EXPECT_EQ(bus.publish("orders.shipped", "{}"), 1U);
  EXPECT_EQ(bus.publish("payments.settled", "{}"), 0U);
  EXPECT_EQ(emails, std::vector<std::string>{R"({"order_id":"ORD-001","amount":99.99})"});
  EXPECT_EQ(analytics, (std::vector<std::string>{"orders.created", "orders.shipped"}));
}

TEST_F(EventBusTest, MessagesCarrySequenceTimeAndHeaders) {
  EventBus bus = make();
  std::vector<Message> seen;
  Subscription s = bus.subscribe("#", [&](const Message& m) { seen.push_back(m); });
  bus.publish("a", "1");
  clock_.advance(milliseconds(5));
  bus.publish("b", "2", {{"trace-id", "abc"}});
  bus.publish_json("c", boost::json::object{{"amount", 99.99}});
  ASSERT_EQ(seen.size(), 3U);
  EXPECT_LT(seen[0].sequence, seen[1].sequence);
  EXPECT_LT(seen[1].sequence, seen[2].sequence);
  EXPECT_EQ(seen[1].published_at - seen[0].published_at, milliseconds(5));
  EXPECT_EQ(seen[1].headers, (Headers{{"trace-id", "abc"}}));
  EXPECT_EQ(boost::json::parse(seen[2].payload).at("amount").as_double(), 99.99);
  EXPECT_EQ(seen[2].headers, (Headers{{"content-type", "application/json"}}));
}

TEST_F(EventBusTest, InvalidTopicsAndPatternsAreRefused) {
  EventBus bus = make();
  EXPECT_THROW(bus.subscribe("orders..created", [](const Message&) {}), InvalidTopic);
  EXPECT_THROW(bus.subscribe("orders.>.eu", [](const Message&) {}), InvalidTopic);
  EXPECT_THROW(bus.publish("orders.*", "x"), InvalidTopic) << "no wildcard in a published topic";
  EXPECT_THROW(bus.subscribe("orders", Handler{}), std::invalid_argument);
  EXPECT_THROW(bus.subscribe("orders", [](const Message&) {}, {.queue_capacity = 0}),
               std::invalid_argument);
  EXPECT_EQ(bus.metrics().published, 0U);
}

TEST_F(EventBusTest, AThrowingHandlerDoesNotStopTheOthers) {
  EventBus bus = make();
  int good = 0;
  Subscription bad =
      bus.subscribe("jobs.#", [](const Message&) { throw std::runtime_error("bug"); });
  Subscription ok = bus.subscribe("jobs.#", [&](const Message&) { ++good; });
  EXPECT_EQ(bus.publish("jobs.run", "x"), 2U);
  EXPECT_EQ(good, 1);
  const BusMetrics m = bus.metrics();
  EXPECT_EQ(m.delivered, 1U);
  EXPECT_EQ(m.failed, 1U);
  EXPECT_EQ(m.dead_lettered, 1U) << "no retries configured: given up at once";
}

TEST_F(EventBusTest, FailedMessagesAreRetriedWithBackoffThenDeadLettered) {
  std::vector<DeadLetter> letters;
  EventBus bus = make({.dead_letter_handler = [&](const DeadLetter& d) { letters.push_back(d); }});
  int calls = 0;
  Subscription s = bus.subscribe(
      "payments.charge",
      [&](const Message&) {
        ++calls;
        throw std::runtime_error("card declined");
      },
      {.name = "charger",
       .retry = {.initial = milliseconds(100), .max_attempts = 3, .jitter = Jitter::none}});
  bus.publish("payments.charge", "order-7");
  EXPECT_EQ(calls, 1);
  clock_.advance(milliseconds(99));
  EXPECT_EQ(calls, 1);
  clock_.advance(milliseconds(1));
  EXPECT_EQ(calls, 2) << "first retry after 100 ms";
  clock_.advance(milliseconds(200));
  EXPECT_EQ(calls, 3) << "second retry 200 ms later";
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].subscription, "charger");
  EXPECT_EQ(letters[0].attempts, 3);
  EXPECT_EQ(letters[0].error, "card declined");
  EXPECT_EQ(letters[0].message.payload, "order-7");
  const BusMetrics m = bus.metrics();
  EXPECT_EQ(m.failed, 3U);
  EXPECT_EQ(m.retried, 2U);
  EXPECT_EQ(m.dead_lettered, 1U);
}

TEST_F(EventBusTest, ARetryThatSucceedsIsDelivered) {
  EventBus bus = make();
  int calls = 0;
  Subscription s = bus.subscribe(
      "x",
      [&](const Message&) {
        if (++calls == 1) throw std::runtime_error("transient");
      },
      {.retry = {.initial = milliseconds(10), .max_attempts = 2, .jitter = Jitter::none}});
  bus.publish("x", "");
  clock_.advance(milliseconds(10));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(bus.metrics().delivered, 1U);
  EXPECT_EQ(bus.metrics().dead_lettered, 0U);
}

TEST(EventBusRetryTest, ARetryTheSchedulerRefusesIsDeadLetteredNotLost) {
  ThreadPoolScheduler stopped(1);
  stopped.shutdown(ShutdownMode::cancel);
  std::vector<DeadLetter> letters;
  EventBus bus({.scheduler = &stopped,
                .dead_letter_handler = [&](const DeadLetter& d) { letters.push_back(d); }});
  Subscription s = bus.subscribe(
      "x", [](const Message&) { throw std::runtime_error("boom"); },
      {.retry = {.initial = milliseconds(10), .max_attempts = 3, .jitter = Jitter::none}});
  bus.publish("x", "");
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].attempts, 1);
  EXPECT_NE(letters[0].error.find("could not be scheduled"), std::string::npos);
}

TEST_F(EventBusTest, DeadLettersArePublishedToTheDeadLetterTopic) {
  EventBus bus = make({.dead_letter_topic = "dead_letter"});
  std::vector<Message> letters;
  Subscription dl = bus.subscribe("dead_letter.>", [&](const Message& m) { letters.push_back(m); });
  Subscription bad = bus.subscribe(
      "orders.created", [](const Message&) { throw std::runtime_error("no stock service"); },
      {.name = "stock reserver"});
  bus.publish("orders.created", "ORD-9");
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].topic, "dead_letter.stock_reserver");
  EXPECT_EQ(letters[0].payload, "ORD-9");
  const Headers& h = letters[0].headers;
  EXPECT_NE(
      std::find(h.begin(), h.end(),
                std::pair<std::string, std::string>{"x-dead-letter-error", "no stock service"}),
      h.end());
}

TEST_F(EventBusTest, UnsubscribeStopsDeliveryEvenFromInsideTheHandler) {
  EventBus bus = make();
  int calls = 0;
  Subscription s;
  s = bus.subscribe("tick", [&](const Message&) {
    ++calls;
    s.unsubscribe();  // from inside its own handler
  });
  bus.publish("tick", "");
  bus.publish("tick", "");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(bus.metrics().subscriptions, 0U);
  {
    Subscription scoped = bus.subscribe("tick", [&](const Message&) { ++calls; });
    bus.publish("tick", "");
  }
  bus.publish("tick", "");
  EXPECT_EQ(calls, 2) << "RAII: the scoped subscription ended with its scope";
}

TEST_F(EventBusTest, TheAuditSubscriberWritesEveryMessageAsAJsonLine) {
  EventBus bus = make();
  std::vector<std::string> lines;
  Subscription audit =
      subscribe_audit(bus, [&](const std::string& line) { lines.push_back(line); });
  bus.publish("orders.created", R"({"id":1})", {{"k", "v"}});
  bus.publish("users.deleted", "42");
  ASSERT_EQ(lines.size(), 2U);
  const auto first = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(first.at("topic").as_string(), "orders.created");
  EXPECT_EQ(first.at("payload").as_string(), R"({"id":1})");
  EXPECT_EQ(first.at("headers").at("k").as_string(), "v");
  EXPECT_EQ(boost::json::parse(lines[1]).at("topic").as_string(), "users.deleted");
}

TEST_F(EventBusTest, RegistersItsMetrics) {
  EventBus bus = make();
  MetricsRegistry registry;
  Subscription s = bus.subscribe("a", [](const Message&) {});
  Subscription exported = bus.register_metrics(registry, "main");
  bus.publish("a", "");
  const std::string text = registry.render();
  EXPECT_NE(text.find(R"(keel_pubsub_messages_total{bus="main",event="published"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(keel_pubsub_subscriptions{bus="main"} 1)"), std::string::npos) << text;
}

}  // namespace
}  // namespace keel::pubsub
