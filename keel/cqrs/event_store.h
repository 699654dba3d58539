// keel::cqrs::EventStore: the port under event sourcing. Events are appended to named streams
// (one stream per aggregate, e.g. "account-42") and never changed; the current state of anything
// is derived by reading its events back.
//
//   InMemoryEventStore store;
//   const NewEvent opened{.type = "AccountOpened", .data = R"({"owner":"Ada"})"};
//   store.append("account-42", ExpectedVersion::no_stream(), std::span(&opened, 1));
//   for (const RecordedEvent& e : store.read_stream("account-42")) apply(e);
//
// The contract every implementation keeps (pinned by event_store_conformance.h):
// - Versions count the events of one stream from 1; a stream's version is its event count, 0
//   when it has none.
// - Positions number every event of the store from 1, strictly increasing in commit order, and
//   never appear out of order: once a reader sees position p, every position below p is visible
//   to it (no gap is filled in later).
// - append() is atomic (all the events of the batch, or none) and checks the ExpectedVersion
//   first; a mismatch throws WrongExpectedVersion and writes nothing. An empty batch writes
//   nothing but still checks.
// - Idempotent retries: a batch whose events carry ids that were already written — the same
//   events, in the same order, in the same stream, at versions the ExpectedVersion accepts —
//   writes nothing and returns the result of the original write (so a client whose append timed
//   out can simply send it again). Reusing an id for any other event throws DuplicateEventId.
// - Invalid input throws std::invalid_argument (see append()).
// - subscribe_all() delivers every event after a position, first the ones already stored, then
//   live ones, in position order, exactly once per subscription, without holding any lock of the
//   store while the handler runs.
//
// Implementations: InMemoryEventStore (here), keel::sqlite::SqliteEventStore (one file, WAL) and
// keel::postgres::PostgresEventStore (many processes, one global order).
//
// Thread safety: every implementation is safe to call from any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::cqrs {

// An event to append. `type` names what happened ("FundsDeposited"); `data` is its JSON body;
// `metadata` is empty or a JSON object (correlation ids, the user who caused it). Give `id` to
// make the append safe to retry; the store generates one (a random UUID) when it is empty.
struct NewEvent {
  std::string type = {};
  std::string data = {};
  std::string metadata = {};
  std::optional<std::string> id = {};  // for idempotent appends
};

// An event as stored.
struct RecordedEvent {
  std::string stream = {};
  std::uint64_t version = 0;   // within the stream, from 1
  std::uint64_t position = 0;  // in the whole store, from 1
  std::string id = {};
  std::string type = {};
  std::string data = {};
  std::string metadata = {};
  std::chrono::system_clock::time_point recorded_at{};  // the store clock's wall_now()

  friend bool operator==(const RecordedEvent&, const RecordedEvent&) = default;
};

// The version a stream must be at for an append to go through (optimistic concurrency).
class ExpectedVersion {
 public:
  enum class Kind { any, no_stream, stream_exists, exactly };

  // Always accepted.
  static ExpectedVersion any() noexcept { return ExpectedVersion(Kind::any, 0); }
  // The stream has no event.
  static ExpectedVersion no_stream() noexcept { return ExpectedVersion(Kind::no_stream, 0); }
  // The stream has at least one event.
  static ExpectedVersion stream_exists() noexcept {
    return ExpectedVersion(Kind::stream_exists, 0);
  }
  // The stream's version is `version`; exactly(0) is no_stream().
  static ExpectedVersion exactly(std::uint64_t version) noexcept {
    return version == 0 ? no_stream() : ExpectedVersion(Kind::exactly, version);
  }

  Kind kind() const noexcept { return kind_; }
  // The version asked for by exactly(); 0 for the other kinds.
  std::uint64_t version() const noexcept { return version_; }
  // Whether a stream at `current` (0: no stream) satisfies this expectation.
  bool accepts(std::uint64_t current) const noexcept;
  // "any", "no_stream", "stream_exists" or "exactly(7)".
  std::string to_string() const;

  friend bool operator==(const ExpectedVersion&, const ExpectedVersion&) = default;

 private:
  ExpectedVersion(Kind kind, std::uint64_t version) noexcept : kind_(kind), version_(version) {}
  Kind kind_;
  std::uint64_t version_;
};

// Thrown by append() when the stream is not at the expected version; nothing was written.
class WrongExpectedVersion : public std::runtime_error {
 public:
  WrongExpectedVersion(std::string stream, ExpectedVersion expected, std::uint64_t actual);
  const std::string& stream() const noexcept { return stream_; }
  ExpectedVersion expected() const noexcept { return expected_; }
  // The stream's version when the append was refused (0: no stream).
  std::uint64_t actual() const noexcept { return actual_; }

 private:
  std::string stream_;
  ExpectedVersion expected_;
  std::uint64_t actual_;
};

// Thrown by append() when an event id is already taken by another event, or given twice in one
// batch: an id names one event forever. Nothing was written.
class DuplicateEventId : public std::invalid_argument {
 public:
  DuplicateEventId(std::string id, const std::string& why);
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
};

// The version and position of the last event an append wrote (for an empty batch: the stream's
// version and 0).
struct AppendResult {
  std::uint64_t version = 0;
  std::uint64_t position = 0;

  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

using EventHandler = std::function<void(const RecordedEvent&)>;

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Appends `events` to `stream` atomically, if the stream is at `expected`. Returns the version
  // and position of the last event written. Throws WrongExpectedVersion (nothing written),
  // DuplicateEventId (an id already names another event), std::invalid_argument for an empty
  // stream name, an empty event type, data that is not valid JSON, metadata that is neither
  // empty nor valid JSON, an empty id, or a stream, type or id holding a NUL byte;
  // keel::BackendError when the engine fails.
  virtual AppendResult append(std::string_view stream, ExpectedVersion expected,
                              std::span<const NewEvent> events) = 0;

  // Events of `stream` from version `from_version` (1 = from the start), at most `max_count`,
  // in version order. Empty for a stream that does not exist.
  virtual std::vector<RecordedEvent> read_stream(std::string_view stream,
                                                 std::uint64_t from_version = 1,
                                                 std::size_t max_count = SIZE_MAX) = 0;

  // Events of every stream with a position above `after_position`, at most `max_count`, in
  // position order. Never skips a position that becomes visible later.
  virtual std::vector<RecordedEvent> read_all(std::uint64_t after_position = 0,
                                              std::size_t max_count = SIZE_MAX) = 0;

  // The stream's version: its number of events, 0 when it does not exist.
  virtual std::uint64_t stream_version(std::string_view stream) = 0;

  // Calls `handler` (must not be empty) with every event after `after_position`: those already
  // stored, then live ones as they are appended, in position order, once each. The handler runs
  // without any lock of the store held, on the thread of subscribe_all() for the events stored
  // before, then on the thread of an append that committed new events (see each
  // implementation), one call at a time per subscription. A handler that throws ends its
  // subscription (logged and counted): the event is not skipped, so the subscriber resumes
  // from its last handled position with a new subscription.
  virtual Subscription subscribe_all(std::uint64_t after_position, EventHandler handler) = 0;

  // Delivers to the subscriptions, on the calling thread, the events committed since they were
  // last served — including those appended by other processes (or other store objects on the
  // same database), which a store does not see by itself. Call it on a timer (EventPoller), or
  // when told that another process appended. The default, for stores that have no other
  // writer (InMemoryEventStore), does nothing.
  virtual void deliver_new_events() {}
};

// Counters since construction; exact under concurrency.
struct EventStoreMetrics {
  std::uint64_t appends = 0;             // append() calls that wrote events
  std::uint64_t events_appended = 0;     // events written
  std::uint64_t idempotent_retries = 0;  // appends recognised as retries (nothing written)
  std::uint64_t conflicts = 0;           // WrongExpectedVersion thrown
  std::uint64_t events_delivered = 0;    // handler calls of subscribe_all that returned
  std::uint64_t handler_failures = 0;    // handler calls that threw (each ended a subscription)
  std::uint64_t subscriptions = 0;       // active now
};

// Exposes a store's counters in `registry`, read at render time from `read` (e.g.
// [&store] { return store.metrics(); }; it must stay callable until the Subscription ends):
// keel_cqrs_events_total{store, event="appended"|"delivered"},
// keel_cqrs_appends_total{store, outcome="written"|"idempotent_retry"|"conflict"},
// keel_cqrs_handler_failures_total{store} and keel_cqrs_subscriptions{store}.
Subscription register_event_store_metrics(MetricsRegistry& registry, std::string_view name,
                                          std::function<EventStoreMetrics()> read);

// An EventStore in this process's memory: for tests, demos and single-process services that
// rebuild their state at start. Reads copy the events out. Appends take an exclusive lock, reads
// a shared one; both cost O(events returned + log n). Live events are delivered to subscriptions
// on the thread of the append, after the append's lock is released.
class InMemoryEventStore final : public EventStore {
 public:
  // `clock` stamps recorded_at (wall_now()); must outlive the store.
  explicit InMemoryEventStore(const Clock& clock = default_clock());
  ~InMemoryEventStore() override;
  InMemoryEventStore(const InMemoryEventStore&) = delete;
  InMemoryEventStore& operator=(const InMemoryEventStore&) = delete;

  AppendResult append(std::string_view stream, ExpectedVersion expected,
                      std::span<const NewEvent> events) override;
  std::vector<RecordedEvent> read_stream(std::string_view stream, std::uint64_t from_version = 1,
                                         std::size_t max_count = SIZE_MAX) override;
  std::vector<RecordedEvent> read_all(std::uint64_t after_position = 0,
                                      std::size_t max_count = SIZE_MAX) override;
  std::uint64_t stream_version(std::string_view stream) override;
  Subscription subscribe_all(std::uint64_t after_position, EventHandler handler) override;

  EventStoreMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::cqrs
