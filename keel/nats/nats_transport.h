// keel::nats::NatsTransport: connects keel::pubsub::EventBus instances in many processes through
// a NATS server (a pubsub::Transport).
//
//   auto nats = std::make_shared<keel::nats::NatsTransport>(
//       keel::nats::NatsTransportOptions{.connection = {.url = "nats://10.0.0.5:4222"}});
//   keel::pubsub::EventBus bus({.transport = nats});
//   auto s = bus.subscribe("orders.*", analytics);     // a NATS subscription on "orders.*"
//   bus.publish("orders.created", payload);            // reaches every process's "orders.*"
//
// Subjects: a keel topic is its NATS subject. '*' and '>' mean the same in both; a pattern with
// '#' subscribes to the widest subject(s) that cover it ("orders.#" -> "orders" and "orders.>",
// "#.eu" -> ">") and drops, counted, what the pattern does not match (pubsub::topic_matches).
// Headers travel as NATS headers (keys sorted on arrival: NATS keeps them in a map), plus
// Keel-Sequence (the publishing bus's sequence) and Keel-Published-At (its wall clock, ns since
// the epoch), which the receiver turns back into Message::sequence and ::published_at.
//
// Mode::core: plain NATS subjects, at most once. A subscriber that is down misses what is
// published meanwhile; a failed handler is retried by the bus's scheduler, in that process.
// Mode::jetstream: at least once. Every topic's first token names a stream (created when
// missing) that stores its messages; every bus subscription is a durable consumer named after
// SubscribeOptions::name, so a subscription made again with the same name gets what was
// published while it was away. The bus acknowledges each message after the handler returns;
// a failure is negatively acknowledged with the retry policy's delay and JetStream redelivers
// it; once JetStream's delivery count reaches retry.max_attempts, a failure is dead-lettered
// and the message terminated. The consumer itself redelivers without limit, so a message whose
// handler never returned (a crash) comes back after ack_wait: a handler may see a message
// twice, so make it idempotent.
// Back-pressure: a subscription's messages wait in nats.c (65,536 at most) while its handler, or
// its full asynchronous queue with OverflowPolicy::block, holds the subscription's thread; beyond
// that nats.c drops them (a slow consumer, counted in async_errors; JetStream redelivers).
//
// Reconnects are automatic (ConnectionOptions) and counted in metrics().
// Thread safety: all members are safe to call from any thread. Each subscription's messages
// arrive on that subscription's own nats.c thread, in order; ending a subscription waits for a
// delivery in flight on another thread (not for the one it is called from).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"
#include "keel/nats/connection_options.h"
#include "keel/pubsub/transport.h"

namespace keel::nats {

enum class Mode { core, jetstream };
enum class Storage { file, memory };

struct JetStreamOptions {
  // Streams are named <stream_prefix><first token of the topic, escaped> and hold the subjects
  // "<token>" and "<token>.>". Default: "KEEL_". REQUIRES: letters, digits, '-' or '_' only.
  std::string stream_prefix = "KEEL_";
  // Create a missing stream on the first publish or subscription that needs it. When off, the
  // streams must exist (made by an operator) or those calls throw BackendError. Default: on.
  bool create_streams = true;
  // Settings of the streams this transport creates. max_age zero keeps messages until removed
  // by an operator. Defaults: file storage, no age limit. REQUIRES: max_age >= 0.
  Storage storage = Storage::file;
  Duration max_age = Duration::zero();
  // How long the server waits for the acknowledgement of a delivered message before
  // redelivering it (the subscriber crashed, or is too slow). Default: 30 s. REQUIRES: > 0.
  Duration ack_wait = std::chrono::seconds(30);
  // Where a new durable subscription starts: with the messages published after it was made
  // (false) or with everything its stream holds (true). A subscription made again resumes where
  // it stopped either way. Default: false.
  bool deliver_history = false;
};

struct NatsTransportOptions {
  ConnectionOptions connection = {};
  // Default: core (at most once).
  Mode mode = Mode::core;
  // Used in Mode::jetstream only.
  JetStreamOptions jetstream = {};
  // Converts Keel-Published-At to and from the bus's monotonic TimePoint. Must outlive the
  // transport and be the clock of the buses that use it. Default: the steady clock.
  const Clock* clock = nullptr;
};

// Counters since construction.
struct NatsMetrics {
  std::uint64_t published = 0;     // messages handed to NATS
  std::uint64_t received = 0;      // messages passed to a bus subscription
  std::uint64_t filtered = 0;      // arrived on a widened subject, not matched by the '#' pattern
  std::uint64_t rejected = 0;      // subject not a valid keel topic (a foreign publisher), dropped
  std::uint64_t acks = 0;          // JetStream: handled, never redeliver
  std::uint64_t naks = 0;          // JetStream: failed or not handled, redeliver
  std::uint64_t terms = 0;         // JetStream: dead-lettered, never redeliver
  std::uint64_t ack_failures = 0;  // acknowledgements that could not be sent (redelivered later)
  std::uint64_t async_errors = 0;  // errors nats.c reported asynchronously (slow consumer: drops)
  std::uint64_t disconnects = 0;
  std::uint64_t reconnects = 0;
};

class NatsTransport final : public pubsub::Transport {
 public:
  // Connects (and, in jetstream mode, opens a JetStream context). Throws std::invalid_argument
  // for invalid options, keel::BackendError when the server cannot be reached.
  explicit NatsTransport(NatsTransportOptions options);
  // Ends the remaining subscriptions, flushes what is buffered (up to request_timeout) and
  // closes the connection.
  ~NatsTransport() override;
  NatsTransport(const NatsTransport&) = delete;
  NatsTransport& operator=(const NatsTransport&) = delete;

  // Core: buffered for the connection's writer (fails when the reconnect buffer is full).
  // JetStream: returns once the stream stored the message. A BackendError while the server is
  // unreachable means "not acknowledged", not "not stored": the message waits in nats.c's
  // reconnect buffer and may still be stored once the connection is back (the fault test
  // nats_restart_test sees it delivered), so a publisher that retries can publish it twice and
  // its subscribers must be idempotent, as for any redelivery. Throws keel::BackendError, and
  // std::invalid_argument for a header key NATS cannot carry (empty, ':' or whitespace). CR and
  // LF in header values become spaces.
  void publish(const pubsub::Message& message) override;

  // Throws InvalidTopic; std::invalid_argument in jetstream mode for a pattern whose first token
  // is a wildcard (it names the stream); keel::BackendError when NATS refuses (for a durable
  // name already in use by an active subscription, or made for another pattern).
  Subscription subscribe(std::string_view pattern, const pubsub::SubscribeOptions& options,
                         pubsub::Receiver receive) override;

  // Waits until the server has processed everything sent so far (up to request_timeout).
  // Throws keel::BackendError.
  void flush();

  bool connected() const;
  NatsMetrics metrics() const;
  // keel_nats_messages_total{transport,event="published"|"received"|"filtered"|"rejected"},
  // keel_nats_acks_total{transport,kind="ack"|"nak"|"term"|"failed"},
  // keel_nats_connection_events_total{transport,event="disconnect"|"reconnect"|"async_error"}.
  Subscription register_metrics(MetricsRegistry& registry, std::string_view name) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace keel::nats
