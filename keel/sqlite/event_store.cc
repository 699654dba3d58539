#include "keel/sqlite/event_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "keel/cqrs/internal/append_rules.h"
#include "keel/cqrs/internal/subscription_hub.h"
#include "keel/sqlite/database.h"

namespace keel::sqlite {
namespace {

using cqrs::AppendResult;
using cqrs::RecordedEvent;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS keel_events (
  position    INTEGER PRIMARY KEY,  -- 1, 2, ... in commit order
  stream      TEXT    NOT NULL,
  version     INTEGER NOT NULL,     -- 1, 2, ... within the stream
  event_id    TEXT    NOT NULL UNIQUE,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,     -- JSON, as given
  metadata    TEXT    NOT NULL,     -- empty or JSON
  recorded_at INTEGER NOT NULL,     -- microseconds since the Unix epoch
  UNIQUE (stream, version)
))sql";

constexpr std::string_view kColumns =
    "stream, version, position, event_id, type, data, metadata, recorded_at";

// SQLite integers are signed 64-bit: larger counts mean "no limit".
std::int64_t to_int64(std::uint64_t value) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

std::int64_t micros_since_epoch(WallTime t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

RecordedEvent event_from(const Statement& row) {
  return RecordedEvent{
      .stream = row.column_text(0),
      .version = static_cast<std::uint64_t>(row.column_int64(1)),
      .position = static_cast<std::uint64_t>(row.column_int64(2)),
      .id = row.column_text(3),
      .type = row.column_text(4),
      .data = row.column_text(5),
      .metadata = row.column_text(6),
      .recorded_at = WallTime(std::chrono::microseconds(row.column_int64(7))),
  };
}

// Runs a prepared query (bindings set) to its end and returns its rows as events.
std::vector<RecordedEvent> events_of(Statement& query) {
  std::vector<RecordedEvent> events;
  while (query.step()) events.push_back(event_from(query));
  query.reset();
  return events;
}

// The statement rewound, ready for new bindings (a step that threw leaves it mid-way).
Statement& fresh(Statement& statement) {
  statement.reset();
  return statement;
}

// The one integer a prepared query returns.
std::int64_t scalar(Statement& query) {
  query.step();
  const std::int64_t value = query.column_int64(0);
  query.reset();
  return value;
}

constexpr std::string_view kCheckpoints =
    "CREATE TABLE IF NOT EXISTS keel_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT "
    "NULL)";

std::uint64_t checkpoint_of(Database& db, std::string_view name) {
  Statement query = db.prepare("SELECT position FROM keel_checkpoints WHERE name = ?1");
  query.bind_text(1, name);
  return query.step() ? static_cast<std::uint64_t>(query.column_int64(0)) : 0;
}

void save_checkpoint(Database& db, std::string_view name, std::uint64_t position) {
  Statement upsert = db.prepare(
      "INSERT INTO keel_checkpoints (name, position) VALUES (?1, ?2) "
      "ON CONFLICT (name) DO UPDATE SET position = excluded.position");
  upsert.bind_text(1, name).bind_int64(2, to_int64(position));
  upsert.step();
}

// The model's change and its checkpoint. REQUIRES: a transaction open on `db`.
void update_read_model(Database& db, SqliteReadModel& model, const RecordedEvent& event) {
  model.update(db, event);
  save_checkpoint(db, model.name(), event.position);
}

// A read model run inline by a SqliteEventStore, with the upcasters its events go through.
struct InlineModel {
  SqliteReadModel* model = nullptr;
  const cqrs::Upcasters* upcasters = nullptr;
};

// Empties the model. REQUIRES: a transaction open on `db`.
void clear_read_model(Database& db, SqliteReadModel& model) {
  model.clear(db);
  save_checkpoint(db, model.name(), 0);
}

}  // namespace

// SqliteProjection

SqliteProjection::SqliteProjection(Database& db, SqliteReadModel& model) : db_(db), model_(model) {
  Transaction tx = db_.transaction();
  db_.execute(kCheckpoints);
  model_.create(db_);
  tx.commit();
}

std::uint64_t SqliteProjection::checkpoint() {
  std::lock_guard lock(mutex_);
  return checkpoint_of(db_, model_.name());
}

void SqliteProjection::apply(const RecordedEvent& event) {
  std::lock_guard lock(mutex_);
  Transaction tx = db_.transaction();
  if (event.position <= checkpoint_of(db_, model_.name())) return;  // applied already
  update_read_model(db_, model_, event);
  tx.commit();
}

void SqliteProjection::reset() {
  std::lock_guard lock(mutex_);
  Transaction tx = db_.transaction();
  clear_read_model(db_, model_);
  tx.commit();
}

// SqliteCheckpointStore

SqliteCheckpointStore::SqliteCheckpointStore(const std::string& path) : db_(path) {
  db_.execute(kCheckpoints);
}

std::uint64_t SqliteCheckpointStore::load(std::string_view name) {
  std::lock_guard lock(mutex_);
  return checkpoint_of(db_, name);
}

void SqliteCheckpointStore::save(std::string_view name, std::uint64_t position) {
  std::lock_guard lock(mutex_);
  save_checkpoint(db_, name, position);
}

// SqliteSnapshotStore

SqliteSnapshotStore::SqliteSnapshotStore(const std::string& path) : db_(path) {
  db_.execute(
      "CREATE TABLE IF NOT EXISTS keel_snapshots (stream TEXT PRIMARY KEY, version INTEGER NOT "
      "NULL, state TEXT NOT NULL)");
}

std::optional<cqrs::Snapshot> SqliteSnapshotStore::load(std::string_view stream) {
  std::lock_guard lock(mutex_);
  auto select = db_.prepare("SELECT version, state FROM keel_snapshots WHERE stream = ?1");
  select.bind_text(1, stream);
  if (!select.step()) return std::nullopt;
  return cqrs::Snapshot{.version = static_cast<std::uint64_t>(select.column_int64(0)),
                        .state = select.column_text(1)};
}

void SqliteSnapshotStore::save(std::string_view stream, const cqrs::Snapshot& snapshot) {
  std::lock_guard lock(mutex_);
  auto upsert = db_.prepare(
      "INSERT INTO keel_snapshots VALUES (?1, ?2, ?3) ON CONFLICT (stream) DO UPDATE SET "
      "version = excluded.version, state = excluded.state WHERE excluded.version > version");
  upsert.bind_text(1, stream)
      .bind_int64(2, static_cast<std::int64_t>(snapshot.version))
      .bind_text(3, snapshot.state);
  upsert.step();
}

// SqliteEventStore

struct SqliteEventStore::Impl {
  Impl(const std::string& path, const Clock& c) : clock(c), db(with_schema(path)) {}

  static Database with_schema(const std::string& path) {
    Database db(path);
    db.execute(kSchema);
    return db;
  }

  // REQUIRES: mu held.
  std::uint64_t version_of(std::string_view stream) {
    fresh(stream_version).bind_text(1, stream);
    return static_cast<std::uint64_t>(scalar(stream_version));
  }

  // REQUIRES: mu held.
  std::vector<RecordedEvent> stored_with_ids(std::span<const cqrs::NewEvent> events) {
    std::vector<RecordedEvent> found;
    for (const std::string& id : cqrs::internal::explicit_ids(events)) {
      fresh(by_id).bind_text(1, id);
      for (RecordedEvent& event : events_of(by_id)) found.push_back(std::move(event));
    }
    return found;
  }

  // REQUIRES: mu held, a write transaction open.
  AppendResult write(std::string_view stream, std::uint64_t current,
                     std::span<const cqrs::NewEvent> events) {
    const std::int64_t last = scalar(fresh(last_position));
    const std::int64_t recorded_at = micros_since_epoch(clock.wall_now());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto offset = static_cast<std::int64_t>(i) + 1;
      fresh(insert)
          .bind_int64(1, last + offset)
          .bind_text(2, stream)
          .bind_int64(3, to_int64(current) + offset)
          .bind_text(4, cqrs::internal::id_or_new(events[i]))
          .bind_text(5, events[i].type)
          .bind_text(6, events[i].data)
          .bind_text(7, events[i].metadata)
          .bind_int64(8, recorded_at);
      insert.step();
    }
    // Inline read models apply the batch (and anything appended by a process that does not run
    // them) inside this transaction.
    for (const InlineModel& inline_model : inline_models) catch_up(inline_model);
    return AppendResult{.version = current + events.size(),
                        .position = static_cast<std::uint64_t>(last) + events.size()};
  }

  // Applies every event after the model's checkpoint, upcast. REQUIRES: mu held, a
  // transaction open.
  void catch_up(const InlineModel& inline_model) {
    constexpr std::size_t kPage = 512;
    SqliteReadModel& model = *inline_model.model;
    for (std::uint64_t after = checkpoint_of(db, model.name());;) {
      const std::vector<RecordedEvent> events = read_all_locked(after, kPage);
      for (const RecordedEvent& stored : events) {
        cqrs::with_upcast(inline_model.upcasters, stored,
                          [&](const RecordedEvent& event) { model.update(db, event); });
      }
      // One checkpoint write per page, not per event: it is in the same transaction, so it
      // moves with the model's rows either way (a batch of 500 clicks paid 500 upserts).
      if (!events.empty()) save_checkpoint(db, model.name(), events.back().position);
      if (events.size() < kPage) return;
      after = events.back().position;
    }
  }

  // REQUIRES: mu held.
  InlineModel* find_inline(const SqliteReadModel& model) {
    const auto it = std::ranges::find(inline_models, &model, &InlineModel::model);
    return it == inline_models.end() ? nullptr : &*it;
  }

  // REQUIRES: mu held.
  std::vector<RecordedEvent> read_all_locked(std::uint64_t after_position, std::size_t max_count) {
    fresh(all_after).bind_int64(1, to_int64(after_position)).bind_int64(2, to_int64(max_count));
    return events_of(all_after);
  }

  std::vector<RecordedEvent> read_all(std::uint64_t after_position, std::size_t max_count) {
    std::lock_guard lock(mu);
    return read_all_locked(after_position, max_count);
  }

  const Clock& clock;
  std::mutex mu;  // serialises every use of db and of the statements below
  Database db;
  Statement stream_version =
      db.prepare("SELECT coalesce(max(version), 0) FROM keel_events WHERE stream = ?1");
  Statement last_position = db.prepare("SELECT coalesce(max(position), 0) FROM keel_events");
  Statement by_id = db.prepare(fmt_select("WHERE event_id = ?1"));
  Statement stream_from =
      db.prepare(fmt_select("WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"));
  Statement all_after = db.prepare(fmt_select("WHERE position > ?1 ORDER BY position LIMIT ?2"));
  Statement insert = db.prepare(
      "INSERT INTO keel_events (position, stream, version, event_id, type, data, metadata, "
      "recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  std::vector<InlineModel> inline_models;  // GUARDED_BY(mu)
  cqrs::internal::AppendCounters counters;
  cqrs::internal::SubscriptionHub hub{
      [this](std::uint64_t after, std::size_t max) { return read_all(after, max); }};

 private:
  static std::string fmt_select(std::string_view where) {
    std::string sql = "SELECT ";
    sql.append(kColumns).append(" FROM keel_events ").append(where);
    return sql;
  }
};

SqliteEventStore::SqliteEventStore(const std::string& path, const Clock& clock)
    : impl_(std::make_unique<Impl>(path, clock)) {}

SqliteEventStore::~SqliteEventStore() = default;

AppendResult SqliteEventStore::append(std::string_view stream, cqrs::ExpectedVersion expected,
                                      std::span<const cqrs::NewEvent> events) {
  cqrs::internal::validate_append(stream, events);
  AppendResult result;
  {
    std::lock_guard lock(impl_->mu);
    Transaction tx = impl_->db.transaction(TransactionMode::immediate);
    const std::uint64_t current = impl_->version_of(stream);
    const std::vector<RecordedEvent> found = impl_->stored_with_ids(events);
    if (auto original = cqrs::internal::decide_append(stream, expected, events, found, current,
                                                      impl_->counters)) {
      return *original;  // the transaction rolls back: it wrote nothing
    }
    if (events.empty()) return AppendResult{.version = current, .position = 0};
    result = impl_->write(stream, current, events);
    tx.commit();
  }
  impl_->counters.wrote(events.size());
  impl_->hub.notify();
  return result;
}

std::vector<RecordedEvent> SqliteEventStore::read_stream(std::string_view stream,
                                                         std::uint64_t from_version,
                                                         std::size_t max_count) {
  std::lock_guard lock(impl_->mu);
  fresh(impl_->stream_from)
      .bind_text(1, stream)
      .bind_int64(2, to_int64(from_version))
      .bind_int64(3, to_int64(max_count));
  return events_of(impl_->stream_from);
}

std::vector<RecordedEvent> SqliteEventStore::read_all(std::uint64_t after_position,
                                                      std::size_t max_count) {
  return impl_->read_all(after_position, max_count);
}

std::uint64_t SqliteEventStore::stream_version(std::string_view stream) {
  std::lock_guard lock(impl_->mu);
  return impl_->version_of(stream);
}

Subscription SqliteEventStore::subscribe_all(std::uint64_t after_position,
                                             cqrs::EventHandler handler) {
  return impl_->hub.subscribe(after_position, std::move(handler));
}

void SqliteEventStore::deliver_new_events() { impl_->hub.notify(); }

void SqliteEventStore::add_inline_read_model(SqliteReadModel& model,
                                             const cqrs::Upcasters* upcasters) {
  std::lock_guard lock(impl_->mu);
  if (impl_->find_inline(model) != nullptr) return;
  const InlineModel inline_model{.model = &model, .upcasters = upcasters};
  // IMMEDIATE: the write lock first, so that another process creating the same tables waits
  // instead of failing half-way (SQLite has no upgrade from a read to a write lock).
  Transaction tx = impl_->db.transaction(TransactionMode::immediate);
  impl_->db.execute(kCheckpoints);
  model.create(impl_->db);
  impl_->catch_up(inline_model);
  tx.commit();
  impl_->inline_models.push_back(inline_model);
}

void SqliteEventStore::rebuild_inline_read_model(SqliteReadModel& model) {
  std::lock_guard lock(impl_->mu);
  const InlineModel* inline_model = impl_->find_inline(model);
  if (inline_model == nullptr) {
    throw std::invalid_argument(
        fmt::format("sqlite: '{}' is not an inline read model of this store", model.name()));
  }
  Transaction tx = impl_->db.transaction(TransactionMode::immediate);
  clear_read_model(impl_->db, model);
  impl_->catch_up(*inline_model);
  tx.commit();
}

cqrs::EventStoreMetrics SqliteEventStore::metrics() const {
  return impl_->hub.metrics(impl_->counters);
}

}  // namespace keel::sqlite
