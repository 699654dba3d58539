// keel::cqrs::Outbox: publishes every event appended to an EventStore to a keel::pubsub::EventBus,
// at least once, also across a crash between the append's commit and the publish.
//
// The "transactional outbox" problem is writing to the database and to a broker without a
// distributed transaction: publish first and a crash loses the write; write first and a crash
// loses the message. With event sourcing the event log is already the outbox: the append is the
// only write, and the Outbox follows the log with a checkpoint saved *after* each publish. A
// crash between commit and publish leaves the event after the checkpoint (published at restart);
// a crash between publish and checkpoint publishes it twice — at least once, so subscribers
// deduplicate by the x-event-id header (or by position).
//
// Topic: "<stream category>.<event type>", the category being the stream name up to its first
// '-' ("account-42" → "account"); characters a pubsub topic token cannot hold become '_'.
// Payload: the event's data. Headers: x-event-id, x-event-stream, x-event-version,
// x-event-position, x-event-type, content-type: application/json (and x-event-metadata when the
// event has metadata).
//
// Thread safety: as ProjectionRunner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "keel/cqrs/event_store.h"
#include "keel/cqrs/projection.h"
#include "keel/pubsub/event_bus.h"

namespace keel::cqrs {

// The topic an event is published to.
std::string outbox_topic(const RecordedEvent& event);

struct OutboxMetrics {
  std::uint64_t published = 0;  // events published (each at least once)
  std::uint64_t failures = 0;   // publishes that threw (each stopped the outbox)
};

class Outbox {
 public:
  // `store`, `bus` and `checkpoints` must outlive the outbox; its checkpoint is saved under
  // `name`. Does not start.
  Outbox(EventStore& store, pubsub::EventBus& bus, CheckpointStore& checkpoints,
         std::string name = "outbox");
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Publishes the events after the checkpoint on this thread, then each live event. A publish
  // that throws stops the outbox (logged and counted) at that event; start() again resumes
  // there. PublishFailed (a full queue of one subscription) counts as published: the bus has
  // counted and delivered it to the others.
  void start();
  void stop();
  bool running() const;
  // The position of the last event published.
  std::uint64_t position() const;
  OutboxMetrics metrics() const;

 private:
  class Publisher;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<ProjectionRunner> runner_;
};

}  // namespace keel::cqrs
