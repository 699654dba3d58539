// Demo of keel/pubsub: the orders example, a wildcard analytics tracker, a failing subscriber
// that ends in the dead-letter handler after its retries, asynchronous delivery, and an
// unsubscribe. Prints who got what.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/demo.h"
#include "keel/pubsub.h"

namespace keel::demo {
namespace {

using std::chrono::milliseconds;
using namespace keel::pubsub;

}  // namespace

void run_pub_sub_demo() {
  heading("An order bus: exact topics, wildcards, a failing subscriber, dead letters");
  ManualClock clock;
  ManualScheduler scheduler(clock);
  std::vector<std::string> log;
  const auto note = [&](std::string line) {
    fmt::print("  {}\n", line);
    log.push_back(std::move(line));
  };
  EventBus bus(
      {.clock = &clock, .scheduler = &scheduler, .dead_letter_handler = [&](const DeadLetter& d) {
         note(fmt::format("dead letter: '{}' gave up on {} #{} after {} attempts: {}",
                          d.subscription, d.message.topic, d.message.sequence, d.attempts,
                          d.error));
       }});

  Subscription email = bus.subscribe("orders.created", [&](const Message& m) {
    const auto order = boost::json::parse(m.payload).as_object();
    note(fmt::format("email      <- {}: confirmation for {}", m.topic,
                     order.at("order_id").as_string().c_str()));
  });
  std::map<std::string, int> counts;
  Subscription analytics = bus.subscribe("orders.*", [&](const Message& m) {
    ++counts[m.topic];
    note(fmt::format("analytics  <- {} (#{})", m.topic, m.sequence));
  });
  Subscription everything_eu = bus.subscribe(
      "#.eu", [&](const Message& m) { note(fmt::format("eu-audit   <- {}", m.topic)); });
  int attempts = 0;
  Subscription warehouse = bus.subscribe(
      "orders.created",
      [&](const Message& m) {
        ++attempts;
        note(fmt::format("warehouse  <- {} attempt {}: the stock service is down", m.topic,
                         attempts));
        throw std::runtime_error("stock service unavailable");
      },
      {.name = "warehouse",
       .retry = {.initial = milliseconds(200), .max_attempts = 3, .jitter = Jitter::none}});

  const std::size_t matched =
      bus.publish("orders.created", R"({"order_id":"ORD-001","amount":99.99})");
  note(fmt::format("publish orders.created matched {} subscriptions", matched));
  bus.publish_json("orders.shipped", boost::json::object{{"order_id", "ORD-001"}});
  bus.publish("orders.created.eu", R"({"order_id":"ORD-002","amount":12.50})");
  fmt::print("  ... advancing the clock: the warehouse's retries run (200 ms, then 400 ms)\n");
  clock.advance(milliseconds(600));

  analytics.unsubscribe();
  note(fmt::format("analytics unsubscribed; publish orders.cancelled matched {}",
                   bus.publish("orders.cancelled", "{}")));

  heading("Asynchronous delivery on a worker pool, per-subscription order kept");
  EventBus async_bus({.delivery = Delivery::asynchronous, .workers = 2});
  std::mutex mutex;
  std::vector<std::uint64_t> seen;
  Subscription consumer = async_bus.subscribe("clicks.>", [&](const Message& m) {
    std::lock_guard lock(mutex);
    seen.push_back(m.sequence);
  });
  for (int i = 0; i < 1000; ++i) async_bus.publish(fmt::format("clicks.page{}", i % 7), "");
  async_bus.flush();
  fmt::print("  1000 published, {} delivered on the worker pool, in publish order: {}\n",
             seen.size(), std::is_sorted(seen.begin(), seen.end()) ? "yes" : "NO");

  heading("Bus metrics");
  const BusMetrics m = bus.metrics();
  fmt::print("  published {}, delivered {}, failed {}, retried {}, dead-lettered {}, dropped {}\n",
             m.published, m.delivered, m.failed, m.retried, m.dead_lettered, m.dropped);
}

}  // namespace keel::demo
