// keel::pubsub::Transport: the port through which an EventBus reaches subscribers in other
// processes (keel/nats implements it on NATS core subjects and JetStream).
//
// Without a transport the bus matches and delivers in process (see event_bus.h). With one,
// EventBus::publish hands every message to Transport::publish, and every bus subscription holds
// one Transport::subscribe: the messages that arrive there go through the bus's normal delivery
// path (synchronous or asynchronous, retries, dead letters, metrics), so isolation works the
// same across processes. A subscriber in the publishing process also receives its message
// through the transport, like every other.
//
// Acknowledgements: a transport that stores messages until they are processed (JetStream) passes
// an Acknowledgement with each one. The bus then settles every message exactly once: ack() when
// the handler returned, nak(delay) when it threw and attempts remain (the transport redelivers,
// instead of the bus's scheduler retrying), term() after the message was dead-lettered, and
// nak(0) when the subscription ended before the handler saw it (so the next subscriber with the
// same name gets it). A transport without storage (core NATS) passes none: the bus retries on its
// scheduler as in process, and the guarantee stays at most once.
//
// Thread safety: implementations are safe to call from any number of threads. `receive` may be
// called on the transport's own threads, concurrently for different subscriptions.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/core/subscription.h"
#include "keel/pubsub/event_bus.h"

namespace keel::pubsub {

// Settles one delivered message with the transport that redelivers it. Each method may be called
// from any thread; the bus calls exactly one of them, once. They do not throw: a failure to reach
// the engine is logged and counted by the transport (the engine then redelivers the message once
// its acknowledgement deadline passes, so the message may be handled twice: at least once).
class Acknowledgement {
 public:
  virtual ~Acknowledgement() = default;
  // Processed: never deliver it again.
  virtual void ack() noexcept = 0;
  // Failed: deliver it again after `delay`.
  virtual void nak(Duration delay) noexcept = 0;
  // Given up on (dead-lettered): never deliver it again.
  virtual void term() noexcept = 0;
};

// One message arriving from a transport for one subscription.
struct Incoming {
  Message message;
  // Which delivery of this message to this subscription it is: 1 the first time, more when the
  // transport redelivers. REQUIRES: >= 1.
  int attempt = 1;
  // Set by transports that redeliver until acknowledged; null for at-most-once ones.
  std::shared_ptr<Acknowledgement> acknowledgement = nullptr;
};

using Receiver = std::function<void(Incoming)>;

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `message` to every subscription whose pattern matches its topic, in any process.
  // Returns once the transport has taken it (buffered or stored, depending on the transport).
  // REQUIRES: message.topic is a valid topic. Throws keel::BackendError when the engine fails.
  virtual void publish(const Message& message) = 0;

  // Calls `receive` with every message whose topic matches `pattern` until the returned
  // Subscription ends; after unsubscribe() returns, `receive` is not running on another thread
  // and is never called again. `options` are the bus subscription's, with `name` filled in: a
  // storing transport uses the name as the subscription's durable identity and
  // retry.max_attempts as the most deliveries of one message.
  // Throws InvalidTopic, std::invalid_argument for a pattern the transport cannot serve,
  // keel::BackendError when the engine fails.
  virtual Subscription subscribe(std::string_view pattern, const SubscribeOptions& options,
                                 Receiver receive) = 0;
};

}  // namespace keel::pubsub
