#include "keel/postgres/event_store.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <limits>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "keel/core/internal/log.h"
#include "keel/cqrs/internal/append_rules.h"
#include "keel/cqrs/internal/subscription_hub.h"
#include "keel/postgres/connection.h"

namespace keel::postgres {
namespace {

using cqrs::AppendResult;
using cqrs::RecordedEvent;

// Run in one transaction; the advisory lock (released at its end) keeps two processes that
// start together from racing on CREATE TABLE IF NOT EXISTS.
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

// See read_committed() below.
constexpr std::string_view kSetReadCommitted = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

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

// The channel appends notify (see AppendListener); the payload is the new head position.
constexpr std::string_view kChannel = "keel_events";

// Events per INSERT statement. libpq sends at most 65,535 parameters with a statement and an
// event takes 8, so a larger batch is written by several statements of one transaction.
constexpr std::size_t kEventsPerInsert = 1000;

// An INSERT of `count` events: one round trip. With `move_head`, it also moves the head to $1
// and notifies kChannel (delivered when the transaction commits), and the events' parameters
// start at $2; without, at $1. Then 8 parameters per event.
std::string insert_sql(std::size_t count, bool move_head) {
  std::string sql = move_head
                        ? fmt::format(
                              "WITH head AS (UPDATE keel_events_head SET position = $1::bigint "
                              "WHERE id RETURNING pg_notify('{}', $1::bigint::text)) ",
                              kChannel)
                        : std::string();
  sql.append(
      "INSERT INTO keel_events (position, stream, version, event_id, type, data, metadata, "
      "recorded_at) VALUES ");
  const std::size_t first = move_head ? 2 : 1;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t p = first + 8 * i;
    sql += fmt::format(
        "{}(${}::bigint, ${}, ${}::bigint, ${}, ${}, ${}::json, ${}, "
        "'epoch'::timestamptz + ${}::bigint * interval '1 microsecond')",
        i == 0 ? "" : ", ", p, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7);
  }
  return sql;
}

// A transaction in READ COMMITTED whatever the server's default_transaction_isolation: the
// appends and the checkpoint locks rely on each statement taking a new snapshot after the row
// lock it waited for (in REPEATABLE READ the first statement's snapshot would be kept, and a
// row changed meanwhile would fail the transaction with a serialization error).
Transaction read_committed(Connection& db) {
  Transaction tx = db.transaction(IsolationLevel::read_committed);
  // libpqxx sends a bare BEGIN for read_committed, i.e. the server's default: say it.
  tx.execute(kSetReadCommitted);
  return tx;
}

// keel_checkpoints, created under an advisory lock (processes may start together), which the
// transaction that runs this holds until it ends.
constexpr std::string_view kCheckpoints =
    "SELECT pg_advisory_xact_lock(7170135938511403);"
    "CREATE TABLE IF NOT EXISTS keel_checkpoints (name text PRIMARY KEY, position bigint NOT "
    "NULL)";

// Creates keel_checkpoints and the model's tables in one transaction holding kCheckpoints's
// advisory lock: two processes creating the same tables at once would otherwise both find them
// missing, and one would fail (a unique violation on pg_type) — CREATE TABLE IF NOT EXISTS is
// not safe against a concurrent CREATE.
void create_read_model(Connection& db, PostgresReadModel& model) {
  Transaction tx = read_committed(db);
  tx.execute(kCheckpoints);
  model.create(tx);
  tx.commit();
}

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

// A read model run inline by a PostgresEventStore, with the upcasters its events go through.
struct InlineModel {
  PostgresReadModel* model = nullptr;
  const cqrs::Upcasters* upcasters = nullptr;
};

// Applies to the model every event after its checkpoint, upcast, and moves the checkpoint.
void catch_up(Transaction& tx, const InlineModel& inline_model) {
  constexpr std::int64_t kPage = 512;
  PostgresReadModel& model = *inline_model.model;
  std::uint64_t after = checkpoint_of(tx, model.name());
  const std::uint64_t first = after;
  for (;;) {
    const std::vector<RecordedEvent> events = events_of(
        tx.execute(fmt::format("{}WHERE position > $1 ORDER BY position LIMIT $2", kSelect),
                   {to_int64(after), kPage}));
    for (const RecordedEvent& stored : events) {
      cqrs::with_upcast(inline_model.upcasters, stored,
                        [&](const RecordedEvent& event) { model.update(tx, event); });
    }
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
  create_read_model(impl_->db, model);
}

PostgresProjection::~PostgresProjection() = default;

std::uint64_t PostgresProjection::checkpoint() {
  std::lock_guard lock(impl_->mu);
  return checkpoint_of(impl_->db, impl_->model.name());
}

void PostgresProjection::apply(const RecordedEvent& event) {
  std::lock_guard lock(impl_->mu);
  Transaction tx = read_committed(impl_->db);
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
  Transaction tx = read_committed(impl_->db);
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
    // READ COMMITTED: in REPEATABLE READ, the head row's INSERT ... ON CONFLICT would fail when
    // an append moved the head since the transaction's snapshot.
    Transaction tx = read_committed(db);
    tx.execute(kSchema);
    tx.commit();
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
    // The first statement moves the head (to the batch's last position) and notifies; a batch
    // too large for one statement's parameters continues in more, in the same transaction.
    std::vector<Param> params;
    for (std::size_t begin = 0; begin < events.size(); begin += kEventsPerInsert) {
      const std::size_t end = std::min(events.size(), begin + kEventsPerInsert);
      const bool move_head = begin == 0;
      params.clear();
      params.reserve((move_head ? 1 : 0) + 8 * (end - begin));
      if (move_head) params.emplace_back(to_int64(last + events.size()));
      for (std::size_t i = begin; i < end; ++i) {
        params.emplace_back(to_int64(last + i + 1));
        params.emplace_back(stream);
        params.emplace_back(to_int64(current + i + 1));
        params.emplace_back(cqrs::internal::id_or_new(events[i]));
        params.emplace_back(events[i].type);
        params.emplace_back(events[i].data);
        params.emplace_back(events[i].metadata);
        params.emplace_back(recorded_at);
      }
      tx.execute(insert_sql(end - begin, move_head), params);
    }
    // Inline read models apply the batch (and anything appended by a process that does not run
    // them) inside this transaction.
    for (const InlineModel& inline_model : inline_models) catch_up(tx, inline_model);
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
  std::vector<InlineModel> inline_models;  // GUARDED_BY(mu)

  // REQUIRES: mu held.
  const InlineModel* find_inline(const PostgresReadModel& model) const {
    const auto it = std::ranges::find(inline_models, &model, &InlineModel::model);
    return it == inline_models.end() ? nullptr : &*it;
  }
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
    // As read_committed(), with the SET and the lock sent together (one round trip less).
    Transaction tx = impl_->db.transaction(IsolationLevel::read_committed);
    const auto last = static_cast<std::uint64_t>(
        tx.execute(fmt::format("{}; {}", kSetReadCommitted, kLockHead))[0].as_int64(0));
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

void PostgresEventStore::add_inline_read_model(PostgresReadModel& model,
                                               const cqrs::Upcasters* upcasters) {
  std::lock_guard lock(impl_->mu);
  if (impl_->find_inline(model) != nullptr) return;
  const InlineModel inline_model{.model = &model, .upcasters = upcasters};
  create_read_model(impl_->db, model);
  // Under the head lock, as an append: no append commits between the catch-up and the model
  // joining the list.
  Transaction tx = read_committed(impl_->db);
  tx.execute(kLockHead);
  catch_up(tx, inline_model);
  tx.commit();
  impl_->inline_models.push_back(inline_model);
}

void PostgresEventStore::rebuild_inline_read_model(PostgresReadModel& model) {
  std::lock_guard lock(impl_->mu);
  const InlineModel* inline_model = impl_->find_inline(model);
  if (inline_model == nullptr) {
    throw std::invalid_argument(
        fmt::format("postgres: '{}' is not an inline read model of this store", model.name()));
  }
  Transaction tx = read_committed(impl_->db);
  tx.execute(kLockHead);
  model.clear(tx);
  save_checkpoint(tx, model.name(), 0);
  catch_up(tx, *inline_model);
  tx.commit();
}

cqrs::EventStoreMetrics PostgresEventStore::metrics() const {
  return impl_->hub.metrics(impl_->counters);
}

// AppendListener

namespace {

// Counts the notifications on kChannel that get_notifs() hands over.
class ChannelReceiver final : public pqxx::notification_receiver {
 public:
  ChannelReceiver(pqxx::connection_base& connection, std::uint64_t& received)
      : pqxx::notification_receiver(connection, std::string(kChannel)), received_(received) {}
  void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { ++received_; }

 private:
  std::uint64_t& received_;
};

}  // namespace

struct AppendListener::Impl {
  Impl(std::string cs, std::function<void()> callback, AppendListenerOptions o)
      : connection_string(std::move(cs)), on_append(std::move(callback)), options(o) {
    if (!on_append) throw std::invalid_argument("postgres: AppendListener without on_append");
    if (options.reconnect_after <= Duration::zero()) {
      throw std::invalid_argument("postgres: AppendListenerOptions::reconnect_after must be > 0");
    }
    stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }

  ~Impl() { ::close(stop_fd); }

  void run() {
    for (;;) {
      try {
        listen();
        return;  // asked to stop
      } catch (...) {
        listening = false;
        connection_failures.fetch_add(1, std::memory_order_relaxed);
        keel::internal::logger().warn(
            "postgres: listening for appends failed: {}; again in {} ms",
            keel::internal::describe(std::current_exception()),
            std::chrono::duration_cast<std::chrono::milliseconds>(options.reconnect_after).count());
      }
      if (wait_for_stop(options.reconnect_after)) return;
    }
  }

  // Listens until asked to stop (returns) or the connection fails (throws).
  void listen() {
    pqxx::connection connection(connection_string);
    std::uint64_t received = 0;
    const ChannelReceiver receiver(connection, received);  // sends LISTEN
    listening = true;
    wake();  // appends may have committed while nothing listened
    for (;;) {
      // Reads what the socket holds, including notifications libpq has buffered already
      // (which poll() would not report): throws pqxx::broken_connection when the connection
      // is lost.
      connection.get_notifs();
      if (received > 0) {
        notifications.fetch_add(received, std::memory_order_relaxed);
        received = 0;
        wake();
      }
      std::array<pollfd, 2> fds{pollfd{.fd = connection.sock(), .events = POLLIN, .revents = 0},
                                pollfd{.fd = stop_fd, .events = POLLIN, .revents = 0}};
      if (fds[0].fd < 0) throw std::runtime_error("the connection is closed");
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
        throw std::system_error(errno, std::generic_category(), "poll");
      }
      if (fds[1].revents != 0) {
        listening = false;
        return;
      }
    }
  }

  void wake() {
    wakes.fetch_add(1, std::memory_order_relaxed);
    try {
      on_append();
    } catch (...) {
      keel::internal::logger().warn("postgres: AppendListener's on_append threw: {}",
                                    keel::internal::describe(std::current_exception()));
    }
  }

  // Waits up to `timeout` (real time); true when asked to stop.
  bool wait_for_stop(Duration timeout) const {
    pollfd fd{.fd = stop_fd, .events = POLLIN, .revents = 0};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
    return ::poll(&fd, 1, static_cast<int>(std::min<std::int64_t>(ms, 60'000))) > 0;
  }

  void stop() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(stop_fd, &one, sizeof one);
  }

  const std::string connection_string;
  const std::function<void()> on_append;
  const AppendListenerOptions options;
  int stop_fd = -1;
  std::atomic<bool> listening{false};
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<std::uint64_t> wakes{0};
  std::atomic<std::uint64_t> connection_failures{0};
  std::thread thread;  // last: started once the rest is built
};

AppendListener::AppendListener(std::string connection_string, std::function<void()> on_append,
                               AppendListenerOptions options)
    : impl_(std::make_unique<Impl>(std::move(connection_string), std::move(on_append), options)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

AppendListener::~AppendListener() {
  impl_->stop();
  impl_->thread.join();
}

bool AppendListener::listening() const { return impl_->listening; }

AppendListenerMetrics AppendListener::metrics() const {
  return AppendListenerMetrics{
      .notifications = impl_->notifications.load(std::memory_order_relaxed),
      .wakes = impl_->wakes.load(std::memory_order_relaxed),
      .connection_failures = impl_->connection_failures.load(std::memory_order_relaxed),
  };
}

}  // namespace keel::postgres
