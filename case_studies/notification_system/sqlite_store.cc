#include "case_studies/notification_system/sqlite_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <condition_variable>
#include <map>
#include <mutex>

#include "case_studies/notification_system/store_internal.h"
#include "keel/sqlite/database.h"

namespace keel::notifier {

namespace {

using internal::kDeliveryColumnCount;
using internal::kDeliveryColumns;
using internal::kLeasedStatuses;
using internal::kNotificationColumnCount;
using internal::kNotificationColumns;
using internal::kPendingStatuses;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  priority INTEGER NOT NULL,
  category TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  template TEXT NOT NULL,
  send_at INTEGER,
  idempotency_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_idempotency_keys (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  notification_id TEXT NOT NULL REFERENCES notifications (id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, key));
CREATE INDEX IF NOT EXISTS user_idempotency_keys_age ON user_idempotency_keys (created_at);
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  notification_id TEXT NOT NULL REFERENCES notifications (id),
  channel TEXT NOT NULL,
  pool INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  due_at INTEGER NOT NULL,
  sort_key INTEGER NOT NULL,
  lease_token TEXT,
  lease_until INTEGER,
  updated_at INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  lease_expiries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries (pool, sort_key, seq)
  WHERE status IN ('queued', 'scheduled', 'retrying');
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (pool, due_at)
  WHERE status IN ('queued', 'scheduled', 'retrying');
CREATE INDEX IF NOT EXISTS deliveries_leased ON deliveries (lease_until)
  WHERE status IN ('claimed', 'sending');
CREATE INDEX IF NOT EXISTS deliveries_of_notification ON deliveries (notification_id);
CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (updated_at) WHERE status = 'failed';
CREATE TABLE IF NOT EXISTS preferences (user_id TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (
  user_id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  phone TEXT NOT NULL,
  push_token TEXT NOT NULL,
  webhook_url TEXT NOT NULL);
)sql";

// Columns added after the first release, with their definitions: a database file created
// before them gets them on open (ALTER TABLE ... ADD COLUMN, in the schema's transaction).
constexpr std::pair<std::string_view, std::string_view> kAddedDeliveryColumns[] = {
    {"cancel_requested", "INTEGER NOT NULL DEFAULT 0"},
    {"lease_expiries", "INTEGER NOT NULL DEFAULT 0"},
};

void migrate(sqlite::Database& db) {
  // The first release kept idempotency keys global (one user's key blocked another's): they
  // move to the per-user table, scoped to the user of the notification they point to.
  sqlite::Statement old_keys =
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_keys'");
  const bool has_old_keys = old_keys.step();
  old_keys.reset();
  if (has_old_keys) {
    db.execute(
        "INSERT OR IGNORE INTO user_idempotency_keys (user_id, key, notification_id, created_at) "
        "SELECT n.user_id, k.key, k.notification_id, k.created_at FROM idempotency_keys k "
        "JOIN notifications n ON n.id = k.notification_id; "
        "DROP TABLE idempotency_keys");
  }
  for (const auto& [name, definition] : kAddedDeliveryColumns) {
    sqlite::Statement has =
        db.prepare("SELECT 1 FROM pragma_table_info('deliveries') WHERE name = ?1");
    has.bind_text(1, name);
    const bool present = has.step();
    has.reset();  // no read open on the table while it is altered
    if (!present) {
      db.execute(fmt::format("ALTER TABLE deliveries ADD COLUMN {} {}", name, definition));
    }
  }
}

// A row of a stepped statement, as internal::read_delivery/read_notification read it.
struct StatementRow {
  const sqlite::Statement& statement;
  std::string text(int column) const { return statement.column_text(column); }
  std::int64_t int64(int column) const { return statement.column_int64(column); }
  bool is_null(int column) const { return statement.column_is_null(column); }
};

Delivery read_delivery(const sqlite::Statement& statement, int at = 0) {
  return internal::read_delivery(StatementRow{statement}, at);
}

Notification read_notification(const sqlite::Statement& statement, int at) {
  return internal::read_notification(StatementRow{statement}, at);
}

// A cached prepared statement, reset (bindings cleared) when the use ends so that no read stays
// open. REQUIRES: the store's mutex held for the whole use.
class Cached {
 public:
  explicit Cached(sqlite::Statement& statement) : statement_(&statement) {}
  ~Cached() {
    statement_->reset();
    statement_->clear_bindings();
  }
  Cached(const Cached&) = delete;
  Cached& operator=(const Cached&) = delete;
  sqlite::Statement* operator->() const { return statement_; }
  sqlite::Statement& operator*() const { return *statement_; }

 private:
  sqlite::Statement* statement_;
};

}  // namespace

namespace {

// A first-come, first-served lock: the writer connection is shared by the critical and the
// standard workers, and std::mutex lets a busy standard worker take it again and again while a
// critical one waits. Holders are served in arrival order.
class FairMutex {
 public:
  void lock() {
    std::unique_lock guard(mu_);
    const std::uint64_t ticket = next_++;
    turn_.wait(guard, [&] { return serving_ == ticket; });
  }
  void unlock() {
    {
      std::lock_guard guard(mu_);
      ++serving_;
    }
    turn_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable turn_;
  std::uint64_t next_ = 0;     // GUARDED_BY(mu_)
  std::uint64_t serving_ = 0;  // GUARDED_BY(mu_)
};

// One connection with its cache of prepared statements, used under its mutex.
struct Connection {
  Connection(const std::string& path, bool sync_every_commit) : db(path) {
    db.execute(sync_every_commit ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  }

  // REQUIRES: mu held.
  Cached prepare(std::string sql) {
    auto found = statements.find(sql);
    if (found == statements.end()) {
      sqlite::Statement statement = db.prepare(sql);
      found = statements.emplace(std::move(sql), std::move(statement)).first;
    }
    return Cached(found->second);
  }

  std::optional<Notification> find_locked(std::string_view id) {
    Cached select = prepare(
        fmt::format("SELECT {} FROM notifications n WHERE n.id = ?1", kNotificationColumns));
    select->bind_text(1, id);
    if (!select->step()) return std::nullopt;
    Notification n = read_notification(*select, 0);
    select->reset();
    Cached deliveries = prepare(
        fmt::format("SELECT {} FROM deliveries d WHERE d.notification_id = ?1 ORDER BY d.seq",
                    kDeliveryColumns));
    deliveries->bind_text(1, id);
    while (deliveries->step()) n.deliveries.push_back(read_delivery(*deliveries));
    return n;
  }

  void recover_leases(std::int64_t now, int max_attempts) {
    Cached recover = prepare(internal::recover_leases_sql("?1", "?3", "?2", "?4"));
    recover->bind_int64(1, now).bind_text(2, internal::kLeaseLost).bind_int64(3, max_attempts);
    recover->bind_text(4, internal::kCancelledLeaseLost);
    recover->step();
  }

  FairMutex mu;
  sqlite::Database db;                                               // GUARDED_BY(mu)
  std::map<std::string, sqlite::Statement, std::less<>> statements;  // GUARDED_BY(mu)
};

}  // namespace

// Writes (and reads inside write transactions) go through `writer`; plain reads through a second
// connection, which WAL lets run beside the writer, so that lookups do not queue behind claims.
struct SqliteNotificationStore::Impl {
  Impl(const std::string& path, const SqliteStoreOptions& options)
      : rules(options.rules),
        aging(internal::aging_millis(options.rules)),
        writer(path, options.sync_every_commit) {
    {
      sqlite::Transaction tx = writer.db.transaction();
      writer.db.execute(kSchema);
      migrate(writer.db);
      tx.commit();
    }
    const bool in_memory = path == ":memory:" || path.empty() || path.starts_with("file::memory:");
    if (!in_memory) extra_reader = std::make_unique<Connection>(path, options.sync_every_commit);
  }
  Connection& reader() { return extra_reader ? *extra_reader : writer; }

  const QueueRules rules;
  const std::int64_t aging;
  Connection writer;
  std::unique_ptr<Connection> extra_reader;  // null for an in-memory database (private to writer)
};

SqliteNotificationStore::SqliteNotificationStore(const std::string& path,
                                                 SqliteStoreOptions options)
    : impl_(std::make_unique<Impl>(path, options)) {}

SqliteNotificationStore::~SqliteNotificationStore() = default;

InsertResult SqliteNotificationStore::insert(const Notification& n, WallTime key_cutoff) {
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  sqlite::Transaction tx = db.transaction();
  {
    Cached purge = impl_->writer.prepare(
        fmt::format("DELETE FROM user_idempotency_keys WHERE rowid IN (SELECT rowid FROM "
                    "user_idempotency_keys WHERE created_at < ?1 ORDER BY created_at LIMIT {})",
                    internal::kKeyPurgeBatch));
    purge->bind_int64(1, to_millis(key_cutoff));
    purge->step();
  }
  if (!n.idempotency_key.empty()) {
    Cached forget = impl_->writer.prepare(
        "DELETE FROM user_idempotency_keys WHERE user_id = ?1 AND key = ?2 AND created_at < ?3");
    forget->bind_text(1, n.user_id).bind_text(2, n.idempotency_key);
    forget->bind_int64(3, to_millis(key_cutoff));
    forget->step();
    Cached held = impl_->writer.prepare(
        "SELECT notification_id FROM user_idempotency_keys WHERE user_id = ?1 AND key = ?2");
    held->bind_text(1, n.user_id).bind_text(2, n.idempotency_key);
    if (held->step()) {
      const std::string id = held->column_text(0);
      held->reset();
      std::optional<Notification> first = impl_->writer.find_locked(id);
      tx.commit();
      if (!first) throw std::runtime_error(fmt::format("idempotency key points to missing {}", id));
      return {std::move(*first), false};
    }
  }
  Cached insert = impl_->writer.prepare(
      "INSERT INTO notifications (id, user_id, priority, category, subject, body, template, "
      "send_at, idempotency_key, fingerprint, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  insert->bind_text(1, n.id).bind_text(2, n.user_id).bind_int64(3, static_cast<int>(n.priority));
  insert->bind_text(4, n.category).bind_text(5, n.subject).bind_text(6, n.body);
  insert->bind_text(7, n.template_name);
  if (n.send_at) {
    insert->bind_int64(8, to_millis(*n.send_at));
  } else {
    insert->bind_null(8);
  }
  insert->bind_text(9, n.idempotency_key).bind_text(10, n.fingerprint);
  insert->bind_int64(11, to_millis(n.created_at));
  insert->step();
  Cached delivery = impl_->writer.prepare(
      "INSERT INTO deliveries (id, notification_id, channel, pool, priority, status, attempts, "
      "last_error, due_at, sort_key, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  for (const Delivery& d : n.deliveries) {
    delivery->reset();
    delivery->bind_text(1, d.id).bind_text(2, n.id).bind_text(3, to_string(d.channel));
    delivery->bind_int64(4, static_cast<int>(pool_of(n.priority)));
    delivery->bind_int64(5, static_cast<int>(n.priority)).bind_text(6, to_string(d.status));
    delivery->bind_int64(7, d.attempts).bind_text(8, d.last_error);
    delivery->bind_int64(9, to_millis(d.due_at));
    delivery->bind_int64(10, sort_key(n.priority, d.due_at, impl_->rules));
    delivery->bind_int64(11, to_millis(d.updated_at));
    delivery->step();
  }
  if (!n.idempotency_key.empty()) {
    Cached key = impl_->writer.prepare(
        "INSERT INTO user_idempotency_keys (user_id, key, notification_id, created_at) "
        "VALUES (?1, ?2, ?3, ?4)");
    key->bind_text(1, n.user_id).bind_text(2, n.idempotency_key).bind_text(3, n.id);
    key->bind_int64(4, to_millis(n.created_at));
    key->step();
  }
  tx.commit();
  return {n, true};
}

std::optional<Notification> SqliteNotificationStore::find(std::string_view id) {
  std::lock_guard lock(impl_->reader().mu);
  return impl_->reader().find_locked(id);
}

std::vector<Claim> SqliteNotificationStore::claim(Pool pool, WallTime now, Duration lease,
                                                  std::size_t max, int max_attempts) {
  if (max_attempts < 1) throw std::invalid_argument("claim: max_attempts must be >= 1");
  if (max == 0) return {};
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  const std::int64_t now_ms = to_millis(now);
  sqlite::Transaction tx = db.transaction();
  impl_->writer.recover_leases(now_ms, max_attempts);
  Cached select = impl_->writer.prepare(fmt::format(
      "SELECT {}, {}, COALESCE(c.email, ''), COALESCE(c.phone, ''), COALESCE(c.push_token, ''), "
      "COALESCE(c.webhook_url, ''), COALESCE(p.document, '') FROM deliveries d JOIN notifications "
      "n ON n.id = "
      "d.notification_id "
      "LEFT JOIN contacts c ON c.user_id = n.user_id "
      "LEFT JOIN preferences p ON p.user_id = n.user_id "
      "WHERE d.pool = ?1 AND d.status IN {} AND d.due_at <= ?2 ORDER BY d.sort_key, d.seq LIMIT ?3",
      kDeliveryColumns, kNotificationColumns, kPendingStatuses));
  select->bind_int64(1, static_cast<int>(pool)).bind_int64(2, now_ms);
  select->bind_int64(3, static_cast<std::int64_t>(max));
  std::vector<Claim> claims;
  const std::string token = internal::new_lease_token(pool);
  while (select->step()) {
    constexpr int kContacts = kDeliveryColumnCount + kNotificationColumnCount;
    claims.push_back(
        {read_notification(*select, kDeliveryColumnCount), read_delivery(*select), token,
         Contacts{select->column_text(kContacts), select->column_text(kContacts + 1),
                  select->column_text(kContacts + 2), select->column_text(kContacts + 3)},
         internal::claimed_preferences(select->column_text(kContacts + 4))});
  }
  select->reset();
  const std::int64_t until =
      now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(lease).count();
  Cached take = impl_->writer.prepare(
      "UPDATE deliveries SET status = 'claimed', lease_token = ?2, lease_until = ?3, "
      "updated_at = ?4 WHERE id = ?1");
  for (Claim& c : claims) {
    take->reset();
    take->bind_text(1, c.delivery.id)
        .bind_text(2, token)
        .bind_int64(3, until)
        .bind_int64(4, now_ms);
    take->step();
    c.delivery.updated_at = now;
  }
  tx.commit();
  return claims;
}

std::optional<int> SqliteNotificationStore::begin_send(std::string_view delivery_id,
                                                       std::string_view lease_token, WallTime now,
                                                       Duration lease) {
  std::lock_guard lock(impl_->writer.mu);
  Cached update = impl_->writer.prepare(
      "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ?3, "
      "lease_until = ?4 WHERE id = ?1 AND status = 'claimed' AND lease_token = ?2 "
      "AND lease_until > ?3 RETURNING attempts");
  update->bind_text(1, delivery_id).bind_text(2, lease_token).bind_int64(3, to_millis(now));
  update->bind_int64(4, to_millis(now + lease));
  if (!update->step()) return std::nullopt;
  const int attempt = static_cast<int>(update->column_int64(0));
  update->reset();
  return attempt;
}

std::optional<DeliveryStatus> SqliteNotificationStore::complete(std::string_view delivery_id,
                                                                std::string_view lease_token,
                                                                const Completion& c, WallTime now) {
  std::lock_guard lock(impl_->writer.mu);
  Cached update = impl_->writer.prepare(fmt::format(
      "UPDATE deliveries SET {}, provider = ?5, due_at = ?6, "
      "sort_key = ?6 + priority * ?7, attempts = attempts - ?8, lease_token = NULL, "
      "lease_until = NULL, updated_at = ?9 "
      "WHERE id = ?1 AND status IN ('claimed', 'sending') AND lease_token = ?2 RETURNING status",
      internal::completion_sql("?3", "?4", "?10")));
  update->bind_text(1, delivery_id).bind_text(2, lease_token).bind_text(3, to_string(c.status));
  update->bind_text(4, c.error).bind_text(5, c.provider).bind_int64(6, to_millis(c.due_at));
  update->bind_int64(7, impl_->aging).bind_int64(8, c.refund_attempt ? 1 : 0);
  update->bind_int64(9, to_millis(now)).bind_text(10, internal::kCancelledWhileSending);
  if (!update->step()) return std::nullopt;
  return internal::status_from_text(update->column_text(0));
}

std::optional<std::vector<std::string>> SqliteNotificationStore::cancel(
    std::string_view notification_id, WallTime now) {
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  sqlite::Transaction tx = db.transaction();
  Cached exists = impl_->writer.prepare("SELECT 1 FROM notifications WHERE id = ?1");
  exists->bind_text(1, notification_id);
  if (!exists->step()) return std::nullopt;
  exists->reset();
  Cached update = impl_->writer.prepare(
      "UPDATE deliveries SET status = 'cancelled', last_error = 'cancelled', lease_token = NULL, "
      "lease_until = NULL, updated_at = ?2 WHERE notification_id = ?1 AND status IN "
      "('queued', 'scheduled', 'retrying', 'claimed') RETURNING id");
  update->bind_text(1, notification_id).bind_int64(2, to_millis(now));
  std::vector<std::string> cancelled;
  while (update->step()) cancelled.push_back(update->column_text(0));
  update->reset();
  Cached request = impl_->writer.prepare(
      "UPDATE deliveries SET cancel_requested = 1, updated_at = ?2 "
      "WHERE notification_id = ?1 AND status = 'sending'");
  request->bind_text(1, notification_id).bind_int64(2, to_millis(now));
  request->step();
  tx.commit();
  return cancelled;
}

RetryResult SqliteNotificationStore::retry(std::string_view delivery_id, WallTime now) {
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  const std::int64_t now_ms = to_millis(now);
  Cached update = impl_->writer.prepare(
      "UPDATE deliveries SET status = 'queued', attempts = 0, cancel_requested = 0, "
      "lease_expiries = 0, due_at = ?2, sort_key = ?2 + priority * ?3, last_error = 'retried by "
      "hand after: ' || last_error, "
      "updated_at = ?2 WHERE id = ?1 AND status = 'failed'");
  update->bind_text(1, delivery_id).bind_int64(2, now_ms).bind_int64(3, impl_->aging);
  update->step();
  if (db.changes() == 1) return RetryResult::retried;
  Cached exists = impl_->writer.prepare("SELECT 1 FROM deliveries WHERE id = ?1");
  exists->bind_text(1, delivery_id);
  const bool found = exists->step();
  exists->reset();
  return found ? RetryResult::not_failed : RetryResult::not_found;
}

std::vector<Delivery> SqliteNotificationStore::dead_letters(std::size_t limit) {
  std::lock_guard lock(impl_->reader().mu);
  Cached select =
      impl_->reader().prepare(fmt::format("SELECT {} FROM deliveries d WHERE d.status = 'failed' "
                                          "ORDER BY d.updated_at DESC, d.seq DESC "
                                          "LIMIT ?1",
                                          kDeliveryColumns));
  select->bind_int64(1, static_cast<std::int64_t>(limit));
  std::vector<Delivery> failed;
  while (select->step()) failed.push_back(read_delivery(*select));
  return failed;
}

std::optional<WallTime> SqliteNotificationStore::next_due(Pool pool) {
  std::lock_guard lock(impl_->reader().mu);
  Cached select = impl_->reader().prepare(fmt::format(
      "SELECT MIN(t) FROM ("
      "  SELECT MIN(due_at) AS t FROM deliveries WHERE pool = ?1 AND status IN {} "
      "  UNION ALL SELECT MIN(lease_until) FROM deliveries WHERE pool = ?1 AND status IN {})",
      kPendingStatuses, kLeasedStatuses));
  select->bind_int64(1, static_cast<int>(pool));
  if (!select->step() || select->column_is_null(0)) return std::nullopt;
  return from_millis(select->column_int64(0));
}

std::map<DeliveryStatus, std::int64_t> SqliteNotificationStore::count_by_status() {
  std::lock_guard lock(impl_->reader().mu);
  Cached select =
      impl_->reader().prepare("SELECT status, COUNT(*) FROM deliveries GROUP BY status");
  std::map<DeliveryStatus, std::int64_t> counts;
  while (select->step()) {
    counts[internal::status_from_text(select->column_text(0))] += select->column_int64(1);
  }
  return counts;
}

Preferences SqliteNotificationStore::preferences(std::string_view user_id, Pool /*lane*/) {
  std::lock_guard lock(impl_->reader().mu);
  Cached select = impl_->reader().prepare("SELECT document FROM preferences WHERE user_id = ?1");
  select->bind_text(1, user_id);
  if (!select->step()) return {};
  return preferences_from_json(select->column_text(0));
}

Preferences SqliteNotificationStore::update_preferences(
    std::string_view user_id, const std::function<void(Preferences&)>& patch) {
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  sqlite::Transaction tx = db.transaction();
  Preferences preferences;
  {
    Cached select = impl_->writer.prepare("SELECT document FROM preferences WHERE user_id = ?1");
    select->bind_text(1, user_id);
    if (select->step()) preferences = preferences_from_json(select->column_text(0));
  }
  patch(preferences);
  Cached upsert = impl_->writer.prepare(
      "INSERT INTO preferences (user_id, document) VALUES (?1, ?2) "
      "ON CONFLICT (user_id) DO UPDATE SET document = excluded.document");
  upsert->bind_text(1, user_id).bind_text(2, boost::json::serialize(to_json(preferences)));
  upsert->step();
  tx.commit();
  return preferences;
}

Contacts SqliteNotificationStore::contacts(std::string_view user_id, Pool /*lane*/) {
  std::lock_guard lock(impl_->reader().mu);
  Cached select = impl_->reader().prepare(
      "SELECT email, phone, push_token, webhook_url FROM contacts WHERE user_id = ?1");
  select->bind_text(1, user_id);
  if (!select->step()) return {};
  return {select->column_text(0), select->column_text(1), select->column_text(2),
          select->column_text(3)};
}

Contacts SqliteNotificationStore::update_contacts(std::string_view user_id,
                                                  const std::function<void(Contacts&)>& patch) {
  std::lock_guard lock(impl_->writer.mu);
  sqlite::Database& db = impl_->writer.db;
  sqlite::Transaction tx = db.transaction();
  Contacts contacts;
  {
    Cached select = impl_->writer.prepare(
        "SELECT email, phone, push_token, webhook_url FROM contacts WHERE user_id = ?1");
    select->bind_text(1, user_id);
    if (select->step()) {
      contacts = {select->column_text(0), select->column_text(1), select->column_text(2),
                  select->column_text(3)};
    }
  }
  patch(contacts);
  Cached upsert = impl_->writer.prepare(
      "INSERT INTO contacts (user_id, email, phone, push_token, webhook_url) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, "
      "phone = excluded.phone, push_token = excluded.push_token, webhook_url = "
      "excluded.webhook_url");
  upsert->bind_text(1, user_id).bind_text(2, contacts.email).bind_text(3, contacts.phone);
  upsert->bind_text(4, contacts.push_token).bind_text(5, contacts.webhook_url);
  upsert->step();
  tx.commit();
  return contacts;
}

}  // namespace keel::notifier
