// keel::pubsub::EventBus: an in-process publish/subscribe bus with wildcard topics.
//
//   EventBus bus;
//   Subscription s1 = bus.subscribe("orders.created", send_confirmation_email);
//   Subscription s2 = bus.subscribe("orders.*", analytics);
//   bus.publish("orders.created", R"({"order_id":"ORD-001","amount":99.99})");  // returns 2
//
// Topics and patterns: see topic.h. A publish finds the matching subscriptions in a trie, so its
// cost grows with the topic's length and the number of matches, not with the number of
// subscriptions.
//
// Delivery (per subscription, default from BusOptions):
// - synchronous: the handler runs in the publisher's thread, before publish() returns;
// - asynchronous: the message waits in the subscription's bounded queue and a worker of the
//   bus's pool runs the handler; each subscription sees its messages in publish order (one
//   worker at a time per subscription). A full queue applies the subscription's OverflowPolicy:
//   block the publisher, drop the oldest message, or fail the publish (PublishFailed) — each
//   counted.
// Isolation: a handler that throws does not stop delivery to the others. The message is retried
// per the subscription's retry policy (backoff from keel/core; retries wait on the bus's
// Scheduler, never in the publisher's thread), then handed to the dead-letter handler and/or
// published to the dead-letter topic with the error. Nothing is dropped without a counter and a
// log line. Guarantee: at most once per subscription (in process memory; see keel/nats for
// at-least-once with JetStream).
//
// Many processes: with BusOptions::transport set (transport.h; keel::nats::NatsTransport),
// publish() hands messages to the transport and each subscription receives through it, then
// delivers as above (synchronous delivery then runs on the transport's thread). A transport that
// redelivers (JetStream) takes over retries: a failed message is negatively acknowledged with
// the retry policy's delay and redelivered by the engine. flush() does not wait for messages
// still on the network.
//
// Thread safety: all members are safe to call from any number of threads. A Subscription may be
// ended from any thread, including from inside its own handler; after unsubscribe() returns the
// handler is not running on another thread and is never called again.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/core/backoff.h"
#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/scheduler.h"
#include "keel/core/subscription.h"
#include "keel/pubsub/topic.h"

namespace keel::pubsub {

class Transport;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Message {
  std::string topic;
  std::string payload;
  std::uint64_t sequence = 0;  // strictly increases with each publish on one bus
  TimePoint published_at{};    // the bus clock's now() at publish
  Headers headers;
};

using Handler = std::function<void(const Message&)>;

enum class Delivery { synchronous, asynchronous };
enum class OverflowPolicy { block, drop_oldest, fail };

// A message that could not be delivered to one subscription.
struct DeadLetter {
  Message message;
  std::string subscription;  // its name
  std::string error;         // what the last attempt threw
  int attempts = 0;
};

struct SubscribeOptions {
  // Names the subscription in metrics, logs and dead letters. Default: the pattern.
  std::string name = {};
  // Default: the bus's delivery.
  std::optional<Delivery> delivery = std::nullopt;
  // Asynchronous delivery: messages waiting at most. REQUIRES: > 0. Default: 1,024.
  std::size_t queue_capacity = 1024;
  // Asynchronous delivery: what a full queue does. Default: block the publisher.
  OverflowPolicy overflow = OverflowPolicy::block;
  // Attempts per message, the first included, and the waits between them. Default: one attempt
  // (no retry). REQUIRES: a valid policy with max_attempts >= 1.
  BackoffPolicy retry{.initial = std::chrono::milliseconds(100), .max_attempts = 1};
};

struct BusOptions {
  // Default delivery of subscriptions. Default: synchronous.
  Delivery delivery = Delivery::synchronous;
  // Worker threads for asynchronous delivery (started on the first asynchronous subscription).
  // REQUIRES: >= 1. Default: 2.
  std::size_t workers = 2;
  // Time of messages. Must outlive the bus. Default: the steady clock.
  const Clock* clock = nullptr;
  // Where retries wait. Must outlive the bus. Default: a one-thread ThreadPoolScheduler owned by
  // the bus, on `clock`. Tests pass a ManualScheduler.
  Scheduler* scheduler = nullptr;
  // Called with every dead letter (on the thread of the last attempt). Default: none.
  std::function<void(const DeadLetter&)> dead_letter_handler = {};
  // When set, dead letters are also published to "<topic>.<subscription name>" (name sanitised
  // to a valid token) with the original payload and headers plus x-dead-letter-* headers. A
  // message on that topic is never dead-lettered again. Default: unset.
  std::optional<std::string> dead_letter_topic = std::nullopt;
  // When set, messages travel through this transport to and from other processes (see
  // transport.h); shared, so it lives as long as the bus uses it. Default: none (in process).
  std::shared_ptr<Transport> transport = nullptr;
};

// Thrown by publish() when a subscription with OverflowPolicy::fail had a full queue; the
// message was still delivered to every other subscription.
class PublishFailed : public std::runtime_error {
 public:
  PublishFailed(std::string topic, std::vector<std::string> subscriptions);
  const std::vector<std::string>& subscriptions() const noexcept { return subscriptions_; }

 private:
  std::vector<std::string> subscriptions_;
};

// Counters since construction; exact under concurrency.
struct BusMetrics {
  std::uint64_t published = 0;      // publish() calls that went through
  std::uint64_t delivered = 0;      // handler calls that returned
  std::uint64_t failed = 0;         // handler calls that threw
  std::uint64_t retried = 0;        // retries scheduled, or redeliveries asked of the transport
  std::uint64_t dead_lettered = 0;  // messages given up on
  std::uint64_t dropped = 0;        // queue overflow (drop_oldest, fail) and unsubscribed backlog
  std::uint64_t subscriptions = 0;  // active now
};

struct SubscriptionInfo {
  std::string name;
  std::string pattern;
  Delivery delivery = Delivery::synchronous;
  std::size_t queue_depth = 0;
  std::uint64_t delivered = 0;
  std::uint64_t failed = 0;
  std::uint64_t dropped = 0;
};

class EventBus {
 public:
  // Throws std::invalid_argument for invalid options.
  explicit EventBus(BusOptions options = {});
  // Ends every subscription (queued asynchronous messages are dropped, counted) and stops the
  // workers. Subscriptions still held elsewhere become no-ops.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Throws InvalidTopic for an invalid pattern, std::invalid_argument for an empty handler or
  // invalid options.
  Subscription subscribe(std::string_view pattern, Handler handler, SubscribeOptions options = {});

  // Delivers to every matching subscription; returns how many matched. Throws InvalidTopic for an
  // invalid topic (nothing is published), PublishFailed as described above.
  // With a transport: hands the message to it and returns how many of this bus's subscriptions
  // match (subscribers elsewhere are not known here); they receive it through the transport.
  // Throws keel::BackendError when the transport fails. The message may still be published:
  // a transport that buffers across reconnects (NATS JetStream, see nats_transport.h) can store
  // it once the server is back, so a caller that retries can publish it twice. Give messages an
  // id and deduplicate where that matters.
  std::size_t publish(std::string_view topic, std::string payload);
  std::size_t publish(std::string_view topic, std::string payload, Headers headers);
  // Serialises `value` and publishes it with header content-type: application/json.
  std::size_t publish_json(std::string_view topic, const boost::json::value& value);

  // Waits until every asynchronous queue is empty and no handler is running (retries waiting on
  // the scheduler are not waited for).
  void flush();

  BusMetrics metrics() const;
  std::vector<SubscriptionInfo> subscriptions() const;
  // keel_pubsub_messages_total{bus,event="published"|"delivered"|"failed"|"retried"|
  // "dead_lettered"|"dropped"}, keel_pubsub_subscriptions{bus} and
  // keel_pubsub_queue_depth{bus,subscription} (subscriptions present at registration).
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Subscribes to every message ("#") and writes each as one JSON line
// ({"sequence":..,"topic":..,"payload":..,"headers":{..},"published_at_ns":..}) to `sink`.
Subscription subscribe_audit(EventBus& bus, std::function<void(const std::string& line)> sink);
// The same, appended to a file (opened now; throws std::runtime_error if it cannot be).
Subscription subscribe_audit_file(EventBus& bus, const std::string& path);

}  // namespace keel::pubsub
