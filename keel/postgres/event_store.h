// keel::postgres::PostgresEventStore: the cqrs::EventStore in PostgreSQL, for services that run
// many processes over one event log with one global order.
//
//   postgres::PostgresEventStore store("host=db dbname=bank user=bank");
//   store.append("account-42", cqrs::ExpectedVersion::exactly(7), events);
//
// Schema (created on first use, under an advisory lock so that processes starting together do
// not race): keel_events holds every event — position (primary key), stream and version (unique
// together), event_id (unique), type, data (json, kept as given), metadata, recorded_at
// (timestamptz) — and keel_events_head is one row holding the last position given.
//
// Gap-free positions with concurrent writers. A bigserial would not do: two transactions draw
// positions 7 and 8, the one holding 8 commits first, and a reader that saw 8 and moved on never
// sees 7. Here every append runs, in READ COMMITTED:
//   1. SELECT position FROM keel_events_head ... FOR UPDATE   -- one appender at a time
//   2. the stream's version, the ids, the expected-version check (each a statement of its own,
//      so each sees every append committed before the lock was granted)
//   3. INSERT the batch at positions head+1.., and UPDATE the head, in one statement
//   4. COMMIT
// The head row's lock is held until the commit, and PostgreSQL makes a transaction visible
// before it releases its locks, so appends commit in position order: any snapshot that holds
// position p+1 holds p. The price is that appends to the whole store are serialised (a few
// round trips each, see docs/cqrs.md for figures); the usual way past it is a "high-water mark"
// (positions from a sequence, readers read only below the oldest transaction still in flight),
// which keeps writers parallel at the cost of latency for readers.
//
// Read models in PostgreSQL (PostgresReadModel): tables with their checkpoint in
// keel_checkpoints, changed in the same transaction. They run inline (add_inline_read_model:
// inside each append's transaction, so the read model is never behind the log) or
// asynchronously (PostgresProjection with a cqrs::ProjectionRunner).
//
// Live events reach a subscription from appends made through this PostgresEventStore at once;
// events appended by other processes arrive with the next local append or when
// deliver_new_events() is called: by a cqrs::EventPoller on a Scheduler, woken early by an
// AppendListener (every append NOTIFYs channel keel_events when it commits).
//
// A batch larger than one statement can carry (libpq's 65,535 parameters, 8 per event) is
// inserted by several statements of the same transaction: still all or nothing. The
// transactions that rely on READ COMMITTED set it themselves, whatever the server's
// default_transaction_isolation.
//
// Errors: as cqrs::EventStore; engine failures throw postgres::Error (a keel::BackendError). An
// append whose COMMIT result is unknown (connection lost, SQLSTATE 08007) may have been written:
// give events ids and send the same append again, which is then recognised as a retry.
// Thread safety: safe from any number of threads; one connection serves them in turn under a
// mutex (appends are serialised by the database anyway). For parallel readers, open several
// stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/projection.h"
#include "keel/cqrs/upcasting.h"
#include "keel/postgres/connection.h"

namespace keel::postgres {

// A read model kept in PostgreSQL tables. Each method runs inside a transaction that the caller
// (PostgresEventStore or PostgresProjection) opened and that also moves the checkpoint.
class PostgresReadModel {
 public:
  virtual ~PostgresReadModel() = default;
  // Names the read model: the key of its checkpoint in keel_checkpoints.
  virtual std::string name() const = 0;
  // Creates its tables when missing (CREATE TABLE IF NOT EXISTS).
  virtual void create(Transaction& tx) = 0;
  // Changes the tables for one event.
  virtual void update(Transaction& tx, const cqrs::RecordedEvent& event) = 0;
  // Deletes every row (before a rebuild).
  virtual void clear(Transaction& tx) = 0;
};

// A PostgresReadModel run asynchronously by a cqrs::ProjectionRunner, on a connection of its
// own (any database). Thread safety: safe from any thread (under a mutex of its own).
class PostgresProjection final : public cqrs::Projection {
 public:
  // Connects, creates keel_checkpoints and the model's tables when missing. `model` must
  // outlive the projection. Throws postgres::Error.
  PostgresProjection(const std::string& connection_string, PostgresReadModel& model);
  ~PostgresProjection() override;
  std::uint64_t checkpoint() override;
  // In one transaction: the model's update and the checkpoint; an event at or before the
  // checkpoint is skipped.
  void apply(const cqrs::RecordedEvent& event) override;
  void reset() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checkpoints in a table keel_checkpoints (created when missing), for consumers whose effect is
// outside the database (cqrs::Outbox) or whose read model lives elsewhere: they survive a
// restart and are shared by the processes of a service. Thread safety: safe from any thread
// (its own connection, under a mutex).
class PostgresCheckpointStore final : public cqrs::CheckpointStore {
 public:
  // Connects and creates the table when missing. Throws postgres::Error.
  explicit PostgresCheckpointStore(const std::string& connection_string);
  ~PostgresCheckpointStore() override;
  std::uint64_t load(std::string_view name) override;
  void save(std::string_view name, std::uint64_t position) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Aggregate snapshots in keel_snapshots, shared by every process. A snapshot only ever replaces
// an older one (a lower version). Thread safety: safe from any thread (its own connection).
class PostgresSnapshotStore final : public cqrs::SnapshotStore {
 public:
  // Connects and creates the table when missing. Throws postgres::Error.
  explicit PostgresSnapshotStore(const std::string& connection_string);
  ~PostgresSnapshotStore() override;
  std::optional<cqrs::Snapshot> load(std::string_view stream) override;
  void save(std::string_view stream, const cqrs::Snapshot& snapshot) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class PostgresEventStore final : public cqrs::EventStore {
 public:
  // Connects with a libpq connection string and creates the schema when missing. `clock` stamps
  // recorded_at and must outlive the store. Throws postgres::Error.
  explicit PostgresEventStore(const std::string& connection_string,
                              const Clock& clock = default_clock());
  ~PostgresEventStore() override;
  PostgresEventStore(const PostgresEventStore&) = delete;
  PostgresEventStore& operator=(const PostgresEventStore&) = delete;

  cqrs::AppendResult append(std::string_view stream, cqrs::ExpectedVersion expected,
                            std::span<const cqrs::NewEvent> events) override;
  std::vector<cqrs::RecordedEvent> read_stream(std::string_view stream,
                                               std::uint64_t from_version = 1,
                                               std::size_t max_count = SIZE_MAX) override;
  std::vector<cqrs::RecordedEvent> read_all(std::uint64_t after_position = 0,
                                            std::size_t max_count = SIZE_MAX) override;
  std::uint64_t stream_version(std::string_view stream) override;
  Subscription subscribe_all(std::uint64_t after_position, cqrs::EventHandler handler) override;

  // Delivers to the subscriptions the events committed since they were last served, including
  // those appended by other processes, on the calling thread (see cqrs::EventPoller).
  void deliver_new_events() override;

  // Runs `model` inline: each append brings it up to date inside its own transaction (under
  // the head lock), so no query sees the log ahead of the read model. Creates its tables (under
  // an advisory lock: processes may add it at once), then catches the model up. An update (or
  // an upcaster) that throws fails the append, which then writes nothing. `model` (and
  // `upcasters`, which translate old events before the model sees them; null: none) must
  // outlive the store. Events appended by processes that do not run the model are applied by
  // the next append that does: run it in every writer for a model that never lags. Adding a
  // model already added does nothing.
  void add_inline_read_model(PostgresReadModel& model, const cqrs::Upcasters* upcasters = nullptr);
  // Empties an inline read model and applies the whole log to it again, in one transaction
  // (which holds the head lock: appends wait). Throws std::invalid_argument when `model` was
  // not added.
  void rebuild_inline_read_model(PostgresReadModel& model);

  cqrs::EventStoreMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct AppendListenerOptions {
  // How long to wait before connecting again after the listening connection failed (real
  // time: this is a network wait). REQUIRES: > 0. Default: 1 s.
  Duration reconnect_after = std::chrono::seconds(1);
};

struct AppendListenerMetrics {
  std::uint64_t notifications = 0;  // NOTIFYs received from appends
  std::uint64_t wakes = 0;          // calls of on_append (notifications coalesced, reconnects)
  std::uint64_t connection_failures = 0;
};

// Wakes a process when any process appends to the PostgresEventStore schema of a database: it
// LISTENs on channel keel_events, on a connection and a thread of its own, and calls
// `on_append` when notifications arrive (several that arrive together make one call). It also
// calls it each time it (re)starts listening, since appends may have committed while it was not.
// Pair it with a cqrs::EventPoller, which keeps polling as the fallback:
//
//   cqrs::EventPoller poller(scheduler, store, {.interval = std::chrono::seconds(1)});
//   postgres::AppendListener listener(connection_string, [&poller] { poller.wake(); });
//
// NOTIFY is a hint, not a delivery: events are always read from the log, so a notification
// lost (a dropped connection) only delays them until the next poll.
//
// Errors: a connection that fails is logged and counted, and opened again after
// reconnect_after; `on_append` throwing is logged and counted as well. Thread safety:
// `on_append` runs on the listener's thread; metrics() is safe from any thread.
class AppendListener {
 public:
  // Starts listening (in the background: the first connection is made by the listener's
  // thread). Throws std::invalid_argument for an empty `on_append` or a reconnect_after <= 0.
  AppendListener(std::string connection_string, std::function<void()> on_append,
                 AppendListenerOptions options = {});
  // Stops the thread and closes its connection; once it returns, on_append is not running and
  // will not be called.
  ~AppendListener();
  AppendListener(const AppendListener&) = delete;
  AppendListener& operator=(const AppendListener&) = delete;

  // Whether the LISTEN is in place now.
  bool listening() const;
  AppendListenerMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::postgres
