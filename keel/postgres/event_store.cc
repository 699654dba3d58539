#include "keel/postgres/event_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "keel/cqrs/internal/append_rules.h"
#include "keel/cqrs/internal/subscription_hub.h"
#include "keel/postgres/connection.h"

namespace keel::postgres {
namespace {

using cqrs::AppendResult;
using cqrs::RecordedEvent;

// Run as one implicit transaction; the advisory lock (released at its end) keeps two processes
// that start together from racing on CREATE TABLE IF NOT EXISTS.
constexpr std::string_view kSchema = R"sql(
SELECT pg_advisory_xact_lock(7170135938511402);
CREATE TABLE IF NOT EXISTS keel_events (
  position    bigint      PRIMARY KEY,  -- 1, 2, ... in commit order
  stream      text        NOT NULL,
  version     bigint      NOT NULL,     -- 1, 2, ... within the stream
  event_id    text        NOT NULL UNIQUE,
  type        text        NOT NULL,
  data        json        NOT NULL,     -- json (not jsonb) keeps the text as given
  metadata    text        NOT NULL,     -- empty or JSON
  recorded_at timestamptz NOT NULL,
  UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS keel_events_head (
  id       boolean PRIMARY KEY DEFAULT true CHECK (id),  -- a single row
  position bigint  NOT NULL                              -- the last position given
);
INSERT INTO keel_events_head (id, position) VALUES (true, 0) ON CONFLICT DO NOTHING;
)sql";

// The single-appender lock (see the header): held until the transaction ends; returns the last
// position given.
constexpr std::string_view kLockHead = "SELECT position FROM keel_events_head WHERE id FOR UPDATE";

constexpr std::string_view kSelect =
    "SELECT stream, version, position, event_id, type, data::text, metadata, "
    "(extract(epoch FROM recorded_at) * 1000000)::bigint FROM keel_events ";

// PostgreSQL integers are signed 64-bit: larger counts mean "no limit".
std::int64_t to_int64(std::uint64_t value) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

std::vector<RecordedEvent> events_of(const Result& rows) {
  std::vector<RecordedEvent> events;
  events.reserve(rows.size());
  for (const Row& row : rows) {
    events.push_back(RecordedEvent{
        .stream = row.as_text(0),
        .version = static_cast<std::uint64_t>(row.as_int64(1)),
        .position = static_cast<std::uint64_t>(row.as_int64(2)),
        .id = row.as_text(3),
        .type = row.as_text(4),
        .data = row.as_text(5),
        .metadata = row.as_text(6),
        .recorded_at = WallTime(std::chrono::microseconds(row.as_int64(7))),
    });
  }
  return events;
}

// A text[] literal: {"a","b \"quoted\""}.
std::string text_array(const std::vector<std::string>& values) {
  std::string literal = "{";
  for (const std::string& value : values) {
    if (literal.size() > 1) literal += ',';
    literal += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') literal += '\\';
      literal += c;
    }
    literal += '"';
  }
  literal += '}';
  return literal;
}

// INSERT of `count` events at once, after moving the head: one round trip.
// Parameters: $1 the new head, then 8 per event.
std::string insert_sql(std::size_t count) {
  std::string sql =
      "WITH head AS (UPDATE keel_events_head SET position = $1 WHERE id) "
      "INSERT INTO keel_events (position, stream, version, event_id, type, data, metadata, "
      "recorded_at) VALUES ";
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t p = 2 + 8 * i;
    sql += fmt::format(
        "{}(${}::bigint, ${}, ${}::bigint, ${}, ${}, ${}::json, ${}, "
        "'epoch'::timestamptz + ${}::bigint * interval '1 microsecond')",
        i == 0 ? "" : ", ", p, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7);
  }
  return sql;
}

// keel_checkpoints, created under an advisory lock (processes may start together).
constexpr std::string_view kCheckpoints =
    "SELECT pg_advisory_xact_lock(7170135938511403);"
    "CREATE TABLE IF NOT EXISTS keel_checkpoints (name text PRIMARY KEY, position bigint NOT "
    "NULL)";

template <class Runner>  // a Connection or a Transaction
std::uint64_t checkpoint_of(Runner& db, std::string_view name) {
  const Result rows = db.execute("SELECT position FROM keel_checkpoints WHERE name = $1", {name});
  return rows.empty() ? 0 : static_cast<std::uint64_t>(rows[0].as_int64(0));
}

template <class Runner>
void save_checkpoint(Runner& db, std::string_view name, std::uint64_t position) {
  db.execute(
      "INSERT INTO keel_checkpoints (name, position) VALUES ($1, $2) "
      "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
      {name, to_int64(position)});
}

// Applies to `model` every event after its checkpoint, and moves the checkpoint.
void catch_up(Transaction& tx, PostgresReadModel& model) {
  constexpr std::int64_t kPage = 512;
  std::uint64_t after = checkpoint_of(tx, model.name());
  const std::uint64_t first = after;
  for (;;) {
    const std::vector<RecordedEvent> events = events_of(
        tx.execute(fmt::format("{}WHERE position > $1 ORDER BY position LIMIT $2", kSelect),
                   {to_int64(after), kPage}));
    for (const RecordedEvent& event : events) model.update(tx, event);
    if (!events.empty()) after = events.back().position;
    if (events.size() < static_cast<std::size_t>(kPage)) break;
  }
  if (after != first) save_checkpoint(tx, model.name(), after);
}

}  // namespace

// PostgresProjection

struct PostgresProjection::Impl {
  Impl(const std::string& connection_string, PostgresReadModel& m)
      : db(connection_string), model(m) {}
  std::mutex mu;
  Connection db;  // GUARDED_BY(mu)
  PostgresReadModel& model;
};

PostgresProjection::PostgresProjection(const std::string& connection_string,
                                       PostgresReadModel& model)
    : impl_(std::make_unique<Impl>(connection_string, model)) {
  impl_->db.execute(kCheckpoints);
  Transaction tx = impl_->db.transaction();
  model.create(tx);
  tx.commit();
}

PostgresProjection::~PostgresProjection() = default;

std::uint64_t PostgresProjection::checkpoint() {
  std::lock_guard lock(impl_->mu);
  return checkpoint_of(impl_->db, impl_->model.name());
}

void PostgresProjection::apply(const RecordedEvent& event) {
  std::lock_guard lock(impl_->mu);
  Transaction tx = impl_->db.transaction();
  const std::string name = impl_->model.name();
  // FOR UPDATE: two projections of the same name (two processes) apply each event once. The row
  // must exist for the lock to hold anything: the first event would otherwise be applied by
  // both.
  tx.execute("INSERT INTO keel_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
             {name});
  const Result rows =
      tx.execute("SELECT position FROM keel_checkpoints WHERE name = $1 FOR UPDATE", {name});
  if (!rows.empty() && event.position <= static_cast<std::uint64_t>(rows[0].as_int64(0))) {
    return;  // applied already
  }
  impl_->model.update(tx, event);
  save_checkpoint(tx, name, event.position);
  tx.commit();
}

void PostgresProjection::reset() {
  std::lock_guard lock(impl_->mu);
  Transaction tx = impl_->db.transaction();
  impl_->model.clear(tx);
  save_checkpoint(tx, impl_->model.name(), 0);
  tx.commit();
}

// PostgresCheckpointStore

struct PostgresCheckpointStore::Impl {
  explicit Impl(const std::string& connection_string) : db(connection_string) {}
  std::mutex mu;
  Connection db;  // GUARDED_BY(mu)
};

PostgresCheckpointStore::PostgresCheckpointStore(const std::string& connection_string)
    : impl_(std::make_unique<Impl>(connection_string)) {
  impl_->db.execute(kCheckpoints);
}

PostgresCheckpointStore::~PostgresCheckpointStore() = default;

std::uint64_t PostgresCheckpointStore::load(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  return checkpoint_of(impl_->db, name);
}

void PostgresCheckpointStore::save(std::string_view name, std::uint64_t position) {
  std::lock_guard lock(impl_->mu);
  save_checkpoint(impl_->db, name, position);
}

// PostgresSnapshotStore

struct PostgresSnapshotStore::Impl {
  explicit Impl(const std::string& connection_string) : db(connection_string) {}
  std::mutex mu;
  Connection db;  // GUARDED_BY(mu)
};

PostgresSnapshotStore::PostgresSnapshotStore(const std::string& connection_string)
    : impl_(std::make_unique<Impl>(connection_string)) {
  Transaction tx = impl_->db.transaction();
  tx.execute("SELECT pg_advisory_xact_lock(1801807214, 0)");  // two processes creating it
  tx.execute(
      "CREATE TABLE IF NOT EXISTS keel_snapshots (stream TEXT PRIMARY KEY, version BIGINT NOT "
      "NULL, state TEXT NOT NULL)");
  tx.commit();
}

PostgresSnapshotStore::~PostgresSnapshotStore() = default;

std::optional<cqrs::Snapshot> PostgresSnapshotStore::load(std::string_view stream) {
  std::lock_guard lock(impl_->mu);
  const Result rows =
      impl_->db.execute("SELECT version, state FROM keel_snapshots WHERE stream = $1", {stream});
  if (rows.empty()) return std::nullopt;
  return cqrs::Snapshot{.version = static_cast<std::uint64_t>(rows[0].as_int64(0)),
                        .state = rows[0].as_text(1)};
}

void PostgresSnapshotStore::save(std::string_view stream, const cqrs::Snapshot& snapshot) {
  std::lock_guard lock(impl_->mu);
  impl_->db.execute(
      "INSERT INTO keel_snapshots VALUES ($1, $2, $3) ON CONFLICT (stream) DO UPDATE SET "
      "version = excluded.version, state = excluded.state "
      "WHERE keel_snapshots.version < excluded.version",
      {stream, static_cast<std::int64_t>(snapshot.version), snapshot.state});
}

// PostgresEventStore

struct PostgresEventStore::Impl {
  Impl(const std::string& connection_string, const Clock& c) : clock(c), db(connection_string) {
    db.execute(kSchema);
  }

  // REQUIRES: mu held.
  std::uint64_t version_of(std::string_view stream, Transaction* tx) {
    static constexpr std::string_view kSql =
        "SELECT coalesce(max(version), 0) FROM keel_events WHERE stream = $1";
    const Result rows = tx ? tx->execute(kSql, {stream}) : db.execute(kSql, {stream});
    return static_cast<std::uint64_t>(rows[0].as_int64(0));
  }

  // REQUIRES: mu held.
  std::vector<RecordedEvent> stored_with_ids(Transaction& tx,
                                             std::span<const cqrs::NewEvent> events) {
    const std::vector<std::string> ids = cqrs::internal::explicit_ids(events);
    if (ids.empty()) return {};
    return events_of(
        tx.execute(fmt::format("{}WHERE event_id = ANY($1::text[])", kSelect), {text_array(ids)}));
  }

  // REQUIRES: mu held, `tx` holding the head's lock, whose position is `last`.
  AppendResult write(Transaction& tx, std::string_view stream, std::uint64_t current,
                     std::uint64_t last, std::span<const cqrs::NewEvent> events) {
    const auto recorded_at =
        std::chrono::duration_cast<std::chrono::microseconds>(clock.wall_now().time_since_epoch())
            .count();
    std::vector<Param> params;
    params.reserve(1 + 8 * events.size());
    params.emplace_back(to_int64(last + events.size()));
    for (std::size_t i = 0; i < events.size(); ++i) {
      params.emplace_back(to_int64(last + i + 1));
      params.emplace_back(stream);
      params.emplace_back(to_int64(current + i + 1));
      params.emplace_back(cqrs::internal::id_or_new(events[i]));
      params.emplace_back(events[i].type);
      params.emplace_back(events[i].data);
      params.emplace_back(events[i].metadata);
      params.emplace_back(recorded_at);
    }
    tx.execute(insert_sql(events.size()), params);
    // Inline read models apply the batch (and anything appended by a process that does not run
    // them) inside this transaction.
    for (PostgresReadModel* model : inline_models) catch_up(tx, *model);
    return AppendResult{.version = current + events.size(), .position = last + events.size()};
  }

  std::vector<RecordedEvent> read_all(std::uint64_t after_position, std::size_t max_count) {
    std::lock_guard lock(mu);
    return events_of(
        db.execute(fmt::format("{}WHERE position > $1 ORDER BY position LIMIT $2", kSelect),
                   {to_int64(after_position), to_int64(max_count)}));
  }

  const Clock& clock;
  std::mutex mu;  // serialises every use of db
  Connection db;
  std::vector<PostgresReadModel*> inline_models;  // GUARDED_BY(mu)
  cqrs::internal::AppendCounters counters;
  cqrs::internal::SubscriptionHub hub{
      [this](std::uint64_t after, std::size_t max) { return read_all(after, max); }};
};

PostgresEventStore::PostgresEventStore(const std::string& connection_string, const Clock& clock)
    : impl_(std::make_unique<Impl>(connection_string, clock)) {}

PostgresEventStore::~PostgresEventStore() = default;

AppendResult PostgresEventStore::append(std::string_view stream, cqrs::ExpectedVersion expected,
                                        std::span<const cqrs::NewEvent> events) {
  cqrs::internal::validate_append(stream, events);
  AppendResult result;
  {
    std::lock_guard lock(impl_->mu);
    // READ COMMITTED: each statement below takes a new snapshot, after the lock was granted.
    Transaction tx = impl_->db.transaction(IsolationLevel::read_committed);
    const auto last = static_cast<std::uint64_t>(tx.execute(kLockHead)[0].as_int64(0));
    const std::uint64_t current = impl_->version_of(stream, &tx);
    const std::vector<RecordedEvent> found = impl_->stored_with_ids(tx, events);
    if (auto original = cqrs::internal::decide_append(stream, expected, events, found, current,
                                                      impl_->counters)) {
      return *original;  // the transaction rolls back: it wrote nothing
    }
    if (events.empty()) return AppendResult{.version = current, .position = 0};
    result = impl_->write(tx, stream, current, last, events);
    tx.commit();
  }
  impl_->counters.wrote(events.size());
  impl_->hub.notify();
  return result;
}

std::vector<RecordedEvent> PostgresEventStore::read_stream(std::string_view stream,
                                                           std::uint64_t from_version,
                                                           std::size_t max_count) {
  std::lock_guard lock(impl_->mu);
  return events_of(impl_->db.execute(
      fmt::format("{}WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3", kSelect),
      {stream, to_int64(from_version), to_int64(max_count)}));
}

std::vector<RecordedEvent> PostgresEventStore::read_all(std::uint64_t after_position,
                                                        std::size_t max_count) {
  return impl_->read_all(after_position, max_count);
}

std::uint64_t PostgresEventStore::stream_version(std::string_view stream) {
  std::lock_guard lock(impl_->mu);
  return impl_->version_of(stream, nullptr);
}

Subscription PostgresEventStore::subscribe_all(std::uint64_t after_position,
                                               cqrs::EventHandler handler) {
  return impl_->hub.subscribe(after_position, std::move(handler));
}

void PostgresEventStore::deliver_new_events() { impl_->hub.notify(); }

void PostgresEventStore::add_inline_read_model(PostgresReadModel& model) {
  std::lock_guard lock(impl_->mu);
  if (std::ranges::find(impl_->inline_models, &model) != impl_->inline_models.end()) return;
  impl_->db.execute(kCheckpoints);
  Transaction tx = impl_->db.transaction();
  model.create(tx);
  // Under the head lock, as an append: no append commits between the catch-up and the model
  // joining the list.
  tx.execute(kLockHead);
  catch_up(tx, model);
  tx.commit();
  impl_->inline_models.push_back(&model);
}

void PostgresEventStore::rebuild_inline_read_model(PostgresReadModel& model) {
  std::lock_guard lock(impl_->mu);
  if (std::ranges::find(impl_->inline_models, &model) == impl_->inline_models.end()) {
    throw std::invalid_argument(
        fmt::format("postgres: '{}' is not an inline read model of this store", model.name()));
  }
  Transaction tx = impl_->db.transaction();
  tx.execute(kLockHead);
  model.clear(tx);
  save_checkpoint(tx, model.name(), 0);
  catch_up(tx, model);
  tx.commit();
}

cqrs::EventStoreMetrics PostgresEventStore::metrics() const {
  return impl_->hub.metrics(impl_->counters);
}

}  // namespace keel::postgres
