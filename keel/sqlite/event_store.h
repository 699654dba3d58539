// keel::sqlite::SqliteEventStore: the cqrs::EventStore in one SQLite file — the embedded default
// for event sourcing.
//
//   sqlite::SqliteEventStore store("events.db");
//   store.append("account-42", cqrs::ExpectedVersion::no_stream(), events);
//
// Design. One table, keel_events, holds every event; its INTEGER PRIMARY KEY is the position and
// UNIQUE indexes on (stream, version) and event_id make stream reads and the idempotency check
// index lookups. An append is one BEGIN IMMEDIATE transaction: it takes SQLite's write lock
// first, then reads the stream's version, checks the expectation and writes the batch at the
// positions after the last one. As SQLite has one writer at a time (across connections and
// processes), positions are given in commit order and a reader never sees a gap. The file is in
// WAL mode: readers do not wait for the writer, and a crash at any point (the process killed,
// mid-batch) leaves the file readable with whole batches only — SQLite's commit is atomic.
// The schema is created on open when missing; the file may hold other keel tables.
//
// Several processes (or several SqliteEventStores) may use one file: each append waits for the
// write lock up to the busy timeout (5 s) and then fails with sqlite::Error. Live events reach a
// subscription from appends made through the same SqliteEventStore at once; events written by
// another process arrive with the next local append or when deliver_new_events() is called —
// every `interval` by a cqrs::EventPoller.
//
// Read models in SQLite (SqliteReadModel): tables with their checkpoint in keel_checkpoints, in
// the same database and changed in the same transaction, so they never apply an event twice or
// skip one. They run inline (add_inline_read_model: in the store's file, inside each append's
// transaction — the read model is never behind the log) or asynchronously (SqliteProjection
// with a cqrs::ProjectionRunner, in any database).
//
// Errors: as cqrs::EventStore; engine failures throw sqlite::Error (a keel::BackendError).
// Thread safety: safe from any number of threads; one connection serves them in turn under a
// mutex (SQLite allows one writer anyway). Handlers of subscribe_all run on the appending thread
// after the append's transaction and lock are released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
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
#include "keel/sqlite/database.h"

namespace keel::sqlite {

// A read model kept in SQLite tables. Each method runs inside a transaction that the caller
// (SqliteEventStore or SqliteProjection) opened and that also moves the checkpoint.
class SqliteReadModel {
 public:
  virtual ~SqliteReadModel() = default;
  // Names the read model: the key of its checkpoint in keel_checkpoints.
  virtual std::string name() const = 0;
  // Creates its tables when missing.
  virtual void create(Database& db) = 0;
  // Changes the tables for one event.
  virtual void update(Database& db, const cqrs::RecordedEvent& event) = 0;
  // Deletes every row (before a rebuild).
  virtual void clear(Database& db) = 0;
};

// A SqliteReadModel in `db` (any database: the event store's file, or another), run
// asynchronously by a cqrs::ProjectionRunner. Thread safety: safe from any thread; uses `db`
// under a mutex of its own, so `db` must not be used elsewhere meanwhile.
class SqliteProjection final : public cqrs::Projection {
 public:
  // Creates keel_checkpoints and the model's tables when missing. `db` and `model` must outlive
  // the projection.
  SqliteProjection(Database& db, SqliteReadModel& model);
  std::uint64_t checkpoint() override;
  // In one transaction: the model's update and the checkpoint; an event at or before the
  // checkpoint is skipped.
  void apply(const cqrs::RecordedEvent& event) override;
  void reset() override;

 private:
  Database& db_;
  SqliteReadModel& model_;
  std::mutex mutex_;
};

// Checkpoints in keel_checkpoints of an SQLite file, for consumers whose effect is outside the
// database (cqrs::Outbox): they survive a restart of the process. Thread safety: safe from any
// thread (its own connection, under a mutex).
class SqliteCheckpointStore final : public cqrs::CheckpointStore {
 public:
  // Opens (or creates) the database at `path`. Throws sqlite::Error.
  explicit SqliteCheckpointStore(const std::string& path);
  std::uint64_t load(std::string_view name) override;
  void save(std::string_view name, std::uint64_t position) override;

 private:
  std::mutex mutex_;
  Database db_;  // GUARDED_BY(mutex_)
};

// Aggregate snapshots in keel_snapshots of an SQLite file (the event store's file or another),
// so that they survive a restart. A snapshot only ever replaces an older one (a lower version).
// Thread safety: safe from any thread (its own connection, under a mutex).
class SqliteSnapshotStore final : public cqrs::SnapshotStore {
 public:
  // Opens (or creates) the database at `path`. Throws sqlite::Error.
  explicit SqliteSnapshotStore(const std::string& path);
  std::optional<cqrs::Snapshot> load(std::string_view stream) override;
  void save(std::string_view stream, const cqrs::Snapshot& snapshot) override;

 private:
  std::mutex mutex_;
  Database db_;  // GUARDED_BY(mutex_)
};

class SqliteEventStore final : public cqrs::EventStore {
 public:
  // Opens (or creates) the database at `path` (a file name; ":memory:" for a private database
  // that ends with the store) and creates the schema when missing. `clock` stamps recorded_at and
  // must outlive the store. Throws sqlite::Error when the file cannot be opened.
  explicit SqliteEventStore(const std::string& path, const Clock& clock = default_clock());
  ~SqliteEventStore() override;
  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

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

  // Runs `model` inline: its tables live in this store's file and each append brings it up to
  // date inside its own transaction, so a query (from any connection to the file) never sees
  // the log ahead of the read model. Catches the model up from its checkpoint first. An update
  // (or an upcaster) that throws fails the append, which then writes nothing. `model` (and
  // `upcasters`, which translate old events before the model sees them; null: none) must
  // outlive the store. Events appended by a process that does not run the model are applied by
  // the next append that does (until then the model lags by them). Adding a model already
  // added does nothing.
  void add_inline_read_model(SqliteReadModel& model, const cqrs::Upcasters* upcasters = nullptr);
  // Empties an inline read model and applies the whole log to it again, in one transaction.
  // Throws std::invalid_argument when `model` was not added.
  void rebuild_inline_read_model(SqliteReadModel& model);

  cqrs::EventStoreMetrics metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::sqlite
