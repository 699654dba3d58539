#include "case_studies/notification_system/postgres_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <condition_variable>
#include <mutex>
#include <tuple>

#include "case_studies/notification_system/store_internal.h"
#include "keel/postgres/connection.h"

namespace keel::notifier {

namespace {

using internal::kDeliveryColumnCount;
using internal::kDeliveryColumns;
using internal::kLeasedStatuses;
using internal::kNotificationColumnCount;
using internal::kNotificationColumns;
using internal::kPendingStatuses;
using postgres::Param;
using postgres::Row;

constexpr std::string_view kSchema = R"sql(
SELECT pg_advisory_xact_lock(7350127);
CREATE TABLE IF NOT EXISTS notifications (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  priority INTEGER NOT NULL,
  category TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  template TEXT NOT NULL,
  send_at BIGINT,
  idempotency_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS user_idempotency_keys (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  notification_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, key));
CREATE INDEX IF NOT EXISTS user_idempotency_keys_age ON user_idempotency_keys (created_at);
DO $$ BEGIN
  -- The first release kept keys global (one user's key blocked another's): scope them.
  IF to_regclass('idempotency_keys') IS NOT NULL THEN
    INSERT INTO user_idempotency_keys (user_id, key, notification_id, created_at)
      SELECT n.user_id, k.key, k.notification_id, k.created_at FROM idempotency_keys k
      JOIN notifications n ON n.id = k.notification_id ON CONFLICT DO NOTHING;
    DROP TABLE idempotency_keys;
  END IF;
END $$;
CREATE TABLE IF NOT EXISTS deliveries (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  notification_id TEXT NOT NULL REFERENCES notifications (id),
  channel TEXT NOT NULL,
  pool INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  provider TEXT NOT NULL DEFAULT '',
  due_at BIGINT NOT NULL,
  sort_key BIGINT NOT NULL,
  lease_token TEXT,
  lease_until BIGINT,
  updated_at BIGINT NOT NULL);
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS lease_expiries INTEGER NOT NULL DEFAULT 0;
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

// A result row, as internal::read_delivery/read_notification read it.
struct ResultRow {
  const Row& row;
  std::string text(int column) const { return row.as_text(index(column)); }
  std::int64_t int64(int column) const { return row.as_int64(index(column)); }
  bool is_null(int column) const { return row.is_null(index(column)); }
  static std::size_t index(int column) { return static_cast<std::size_t>(column); }
};

Delivery read_delivery(const Row& row, int at = 0) {
  return internal::read_delivery(ResultRow{row}, at);
}

Notification read_notification(const Row& row, int at) {
  return internal::read_notification(ResultRow{row}, at);
}

// The time leases are measured in: the caller's `now` when it is given ($n not NULL), else the
// server's clock at the start of the statement, so that nodes whose clocks disagree agree on
// when a lease ends.
std::string lease_now(int parameter) {
  return fmt::format(
      "COALESCE(${}::bigint, (extract(epoch FROM statement_timestamp()) * 1000)::bigint)",
      parameter);
}

template <class Executor>
std::optional<Notification> find_with(Executor& db, std::string_view id) {
  const postgres::Result found = db.execute(
      fmt::format("SELECT {} FROM notifications n WHERE n.id = $1", kNotificationColumns), {id});
  if (found.empty()) return std::nullopt;
  Notification n = read_notification(found[0], 0);
  const postgres::Result deliveries = db.execute(
      fmt::format("SELECT {} FROM deliveries d WHERE d.notification_id = $1 ORDER BY d.seq",
                  kDeliveryColumns),
      {id});
  for (const Row& row : deliveries) n.deliveries.push_back(read_delivery(row));
  return n;
}

}  // namespace

struct PostgresNotificationStore::Impl {
  Impl(const std::string& connection_string, PostgresStoreOptions store_options)
      : options(store_options), aging(internal::aging_millis(store_options.rules)) {
    if (options.critical_connections < 1 || options.critical_connections >= options.connections) {
      throw std::invalid_argument(fmt::format(
          "PostgresStoreOptions: critical_connections must be >= 1 and < connections ({}), got {}",
          options.connections, options.critical_connections));
    }
    for (std::size_t i = 0; i < options.connections; ++i) {
      auto& list = i < options.critical_connections ? reserved : shared;
      list.push_back(std::make_unique<postgres::Connection>(connection_string));
    }
    postgres::Transaction tx = shared.front()->transaction();
    tx.execute(kSchema);
    tx.commit();
  }

  // The caller's `now` for lease times, or NULL for the server's clock (lease_now()).
  Param lease_time(WallTime now) const {
    return options.lease_clock == LeaseClock::caller ? Param(to_millis(now)) : Param(nullptr);
  }

  // A connection borrowed for one call. Critical work takes a reserved connection when one is
  // idle, else a shared one; other work only shared ones, so it can never hold them all.
  class Borrowed {
   public:
    explicit Borrowed(Impl& impl, Pool lane = Pool::standard) : impl_(impl) {
      std::unique_lock lock(impl_.mu);
      const bool critical = lane == Pool::critical;
      impl_.available.wait(
          lock, [&] { return (critical && !impl_.reserved.empty()) || !impl_.shared.empty(); });
      from_reserved_ = critical && !impl_.reserved.empty();
      auto& list = from_reserved_ ? impl_.reserved : impl_.shared;
      connection_ = std::move(list.back());
      list.pop_back();
    }
    ~Borrowed() {
      {
        std::lock_guard lock(impl_.mu);
        (from_reserved_ ? impl_.reserved : impl_.shared).push_back(std::move(connection_));
      }
      // All: a critical and a standard caller may wait for different lists.
      impl_.available.notify_all();
    }
    Borrowed(const Borrowed&) = delete;
    Borrowed& operator=(const Borrowed&) = delete;
    postgres::Connection* operator->() const { return connection_.get(); }
    postgres::Connection& operator*() const { return *connection_; }

   private:
    Impl& impl_;
    bool from_reserved_ = false;
    std::unique_ptr<postgres::Connection> connection_;
  };

  const PostgresStoreOptions options;
  const std::int64_t aging;
  std::mutex mu;
  std::condition_variable available;
  std::vector<std::unique_ptr<postgres::Connection>> reserved;  // GUARDED_BY(mu); critical only
  std::vector<std::unique_ptr<postgres::Connection>> shared;    // GUARDED_BY(mu)
};

PostgresNotificationStore::PostgresNotificationStore(const std::string& connection_string,
                                                     PostgresStoreOptions options)
    : impl_(std::make_unique<Impl>(connection_string, options)) {}

PostgresNotificationStore::~PostgresNotificationStore() = default;

InsertResult PostgresNotificationStore::insert(const Notification& n, WallTime key_cutoff) {
  Impl::Borrowed db(*impl_, pool_of(n.priority));
  postgres::Transaction tx = db->transaction();
  // Rows another insert is purging are skipped, not waited for.
  tx.execute(fmt::format("DELETE FROM user_idempotency_keys WHERE ctid IN (SELECT ctid FROM "
                         "user_idempotency_keys WHERE created_at < $1 LIMIT {} FOR UPDATE "
                         "SKIP LOCKED)",
                         internal::kKeyPurgeBatch),
             {to_millis(key_cutoff)});
  if (!n.idempotency_key.empty()) {
    tx.execute(
        "DELETE FROM user_idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3",
        {n.user_id, n.idempotency_key, to_millis(key_cutoff)});
    // Waits for a concurrent insert of the same key to end; then exactly one of us holds it.
    const postgres::Result claimed = tx.execute(
        "INSERT INTO user_idempotency_keys (user_id, key, notification_id, created_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING RETURNING key",
        {n.user_id, n.idempotency_key, n.id, to_millis(n.created_at)});
    if (claimed.empty()) {
      const postgres::Result held = tx.execute(
          "SELECT notification_id FROM user_idempotency_keys WHERE user_id = $1 AND key = $2",
          {n.user_id, n.idempotency_key});
      if (held.empty()) throw std::runtime_error("idempotency key vanished during insert");
      std::optional<Notification> first = find_with(tx, held[0].as_text(0));
      tx.commit();
      if (!first) throw std::runtime_error("idempotency key points to a missing notification");
      return {std::move(*first), false};
    }
  }
  tx.execute(
      "INSERT INTO notifications (id, user_id, priority, category, subject, body, template, "
      "send_at, idempotency_key, fingerprint, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {n.id, n.user_id, static_cast<int>(n.priority), n.category, n.subject, n.body,
       n.template_name, n.send_at ? Param(to_millis(*n.send_at)) : Param(nullptr),
       n.idempotency_key, n.fingerprint, to_millis(n.created_at)});
  for (const Delivery& d : n.deliveries) {
    tx.execute(
        "INSERT INTO deliveries (id, notification_id, channel, pool, priority, status, attempts, "
        "last_error, due_at, sort_key, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        {d.id, n.id, to_string(d.channel), static_cast<int>(pool_of(n.priority)),
         static_cast<int>(n.priority), to_string(d.status), d.attempts, d.last_error,
         to_millis(d.due_at), sort_key(n.priority, d.due_at, impl_->options.rules),
         to_millis(d.updated_at)});
  }
  tx.commit();
  return {n, true};
}

std::optional<Notification> PostgresNotificationStore::find(std::string_view id) {
  Impl::Borrowed db(*impl_);
  return find_with(*db, id);
}

std::vector<Claim> PostgresNotificationStore::claim(Pool pool, WallTime now, Duration lease,
                                                    std::size_t max, int max_attempts) {
  if (max_attempts < 1) throw std::invalid_argument("claim: max_attempts must be >= 1");
  if (max == 0) return {};
  Impl::Borrowed db(*impl_, pool);
  const std::int64_t now_ms = to_millis(now);
  const Param lease_time = impl_->lease_time(now);
  db->execute(fmt::format("{} AND pool = $5", internal::recover_leases_sql(lease_now(1), "$3::int",
                                                                           "$2::text", "$4::text")),
              {lease_time, internal::kLeaseLost, max_attempts, internal::kCancelledLeaseLost,
               static_cast<int>(pool)});
  const std::string token = internal::new_lease_token(pool);
  const std::int64_t lease_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(lease).count();
  const postgres::Result rows = db->execute(
      fmt::format("WITH picked AS ("
                  "  SELECT seq FROM deliveries WHERE pool = $1 AND status IN {} AND due_at <= $2 "
                  "  ORDER BY sort_key, seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
                  "UPDATE deliveries d SET status = 'claimed', lease_token = $4, "
                  "  lease_until = {} + $5::bigint, updated_at = $2 "
                  "FROM picked JOIN notifications n ON TRUE "
                  "  LEFT JOIN contacts c ON c.user_id = n.user_id "
                  "  LEFT JOIN preferences p ON p.user_id = n.user_id "
                  "WHERE d.seq = picked.seq AND n.id = d.notification_id "
                  "RETURNING {}, {}, COALESCE(c.email, ''), COALESCE(c.phone, ''), "
                  "  COALESCE(c.push_token, ''), COALESCE(c.webhook_url, ''), d.sort_key, d.seq, "
                  "  COALESCE(p.document, '')",
                  kPendingStatuses, lease_now(6), kDeliveryColumns, kNotificationColumns),
      {static_cast<int>(pool), now_ms, static_cast<std::int64_t>(max), token, lease_ms,
       lease_time});
  std::vector<std::tuple<std::int64_t, std::int64_t, Claim>> ordered;
  const std::size_t contacts_column = kDeliveryColumnCount + kNotificationColumnCount;
  const std::size_t key_column = contacts_column + 4;
  for (const Row& row : rows) {
    ordered.emplace_back(
        row.as_int64(key_column), row.as_int64(key_column + 1),
        Claim{read_notification(row, kDeliveryColumnCount), read_delivery(row), token,
              Contacts{row.as_text(contacts_column), row.as_text(contacts_column + 1),
                       row.as_text(contacts_column + 2), row.as_text(contacts_column + 3)},
              internal::claimed_preferences(row.as_text(key_column + 2))});
  }
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
  });
  std::vector<Claim> claims;
  claims.reserve(ordered.size());
  for (auto& entry : ordered) claims.push_back(std::move(std::get<2>(entry)));
  return claims;
}

std::optional<int> PostgresNotificationStore::begin_send(std::string_view delivery_id,
                                                         std::string_view lease_token, WallTime now,
                                                         Duration lease) {
  Impl::Borrowed db(*impl_, internal::pool_of_token(lease_token));
  const postgres::Result row =
      db->execute(fmt::format("UPDATE deliveries SET status = 'sending', attempts = attempts + 1, "
                              "updated_at = $3, lease_until = {0} + $4::bigint "
                              "WHERE id = $1 AND status = 'claimed' AND lease_token = $2 "
                              "AND lease_until > {0} RETURNING attempts",
                              lease_now(5)),
                  {delivery_id, lease_token, to_millis(now),
                   std::chrono::duration_cast<std::chrono::milliseconds>(lease).count(),
                   impl_->lease_time(now)});
  if (row.empty()) return std::nullopt;
  return static_cast<int>(row[0].as_int64(0));
}

std::optional<DeliveryStatus> PostgresNotificationStore::complete(std::string_view delivery_id,
                                                                  std::string_view lease_token,
                                                                  const Completion& c,
                                                                  WallTime now) {
  Impl::Borrowed db(*impl_, internal::pool_of_token(lease_token));
  const postgres::Result result = db->execute(
      fmt::format("UPDATE deliveries SET {}, provider = $5, due_at = $6::bigint, "
                  "sort_key = $6::bigint + priority * $7::bigint, attempts = attempts - $8::int, "
                  "lease_token = NULL, lease_until = NULL, updated_at = $9 "
                  "WHERE id = $1 AND status IN ('claimed', 'sending') AND lease_token = $2 "
                  "RETURNING status",
                  internal::completion_sql("$3::text", "$4::text", "$10::text")),
      {delivery_id, lease_token, to_string(c.status), c.error, c.provider, to_millis(c.due_at),
       impl_->aging, c.refund_attempt ? 1 : 0, to_millis(now), internal::kCancelledWhileSending});
  if (result.empty()) return std::nullopt;
  return internal::status_from_text(result[0].as_text(0));
}

std::optional<std::vector<std::string>> PostgresNotificationStore::cancel(
    std::string_view notification_id, WallTime now) {
  Impl::Borrowed db(*impl_);
  postgres::Transaction tx = db->transaction();
  if (tx.execute("SELECT 1 FROM notifications WHERE id = $1", {notification_id}).empty()) {
    return std::nullopt;
  }
  const postgres::Result rows = tx.execute(
      "UPDATE deliveries SET status = 'cancelled', last_error = 'cancelled', lease_token = NULL, "
      "lease_until = NULL, updated_at = $2 WHERE notification_id = $1 AND status IN "
      "('queued', 'scheduled', 'retrying', 'claimed') RETURNING id",
      {notification_id, to_millis(now)});
  tx.execute(
      "UPDATE deliveries SET cancel_requested = 1, updated_at = $2 "
      "WHERE notification_id = $1 AND status = 'sending'",
      {notification_id, to_millis(now)});
  tx.commit();
  std::vector<std::string> cancelled;
  for (const Row& row : rows) cancelled.push_back(row.as_text(0));
  return cancelled;
}

RetryResult PostgresNotificationStore::retry(std::string_view delivery_id, WallTime now) {
  Impl::Borrowed db(*impl_);
  const postgres::Result result = db->execute(
      "UPDATE deliveries SET status = 'queued', attempts = 0, cancel_requested = 0, "
      "lease_expiries = 0, due_at = $2::bigint, "
      "sort_key = $2::bigint + priority * $3::bigint, "
      "last_error = 'retried by hand after: ' || last_error, "
      "updated_at = $2::bigint WHERE id = $1 AND status = 'failed'",
      {delivery_id, to_millis(now), impl_->aging});
  if (result.affected_rows() == 1) return RetryResult::retried;
  return db->execute("SELECT 1 FROM deliveries WHERE id = $1", {delivery_id}).empty()
             ? RetryResult::not_found
             : RetryResult::not_failed;
}

std::vector<Delivery> PostgresNotificationStore::dead_letters(std::size_t limit) {
  Impl::Borrowed db(*impl_);
  const postgres::Result rows =
      db->execute(fmt::format("SELECT {} FROM deliveries d WHERE d.status = 'failed' "
                              "ORDER BY d.updated_at DESC, d.seq DESC LIMIT $1",
                              kDeliveryColumns),
                  {static_cast<std::int64_t>(limit)});
  std::vector<Delivery> failed;
  for (const Row& row : rows) failed.push_back(read_delivery(row));
  return failed;
}

std::optional<WallTime> PostgresNotificationStore::next_due(Pool pool) {
  Impl::Borrowed db(*impl_, pool);
  const postgres::Result row = db->execute(
      fmt::format("SELECT LEAST("
                  "  (SELECT MIN(due_at) FROM deliveries WHERE pool = $1 AND status IN {}), "
                  "  (SELECT MIN(lease_until) FROM deliveries WHERE pool = $1 AND status IN {}))",
                  kPendingStatuses, kLeasedStatuses),
      {static_cast<int>(pool)});
  if (row.empty() || row[0].is_null(0)) return std::nullopt;
  return from_millis(row[0].as_int64(0));
}

std::map<DeliveryStatus, std::int64_t> PostgresNotificationStore::count_by_status() {
  Impl::Borrowed db(*impl_);
  std::map<DeliveryStatus, std::int64_t> counts;
  for (const Row& row : db->execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status")) {
    counts[internal::status_from_text(row.as_text(0))] += row.as_int64(1);
  }
  return counts;
}

Preferences PostgresNotificationStore::preferences(std::string_view user_id, Pool lane) {
  Impl::Borrowed db(*impl_, lane);
  const postgres::Result row =
      db->execute("SELECT document FROM preferences WHERE user_id = $1", {user_id});
  if (row.empty()) return {};
  return preferences_from_json(row[0].as_text(0));
}

Preferences PostgresNotificationStore::update_preferences(
    std::string_view user_id, const std::function<void(Preferences&)>& patch) {
  Impl::Borrowed db(*impl_);
  postgres::Transaction tx = db->transaction();
  tx.execute("INSERT INTO preferences (user_id, document) VALUES ($1, $2) ON CONFLICT DO NOTHING",
             {user_id, boost::json::serialize(to_json(Preferences{}))});
  const postgres::Result row =
      tx.execute("SELECT document FROM preferences WHERE user_id = $1 FOR UPDATE", {user_id});
  Preferences preferences = preferences_from_json(row[0].as_text(0));
  patch(preferences);
  tx.execute("UPDATE preferences SET document = $2 WHERE user_id = $1",
             {user_id, boost::json::serialize(to_json(preferences))});
  tx.commit();
  return preferences;
}

Contacts PostgresNotificationStore::contacts(std::string_view user_id, Pool lane) {
  Impl::Borrowed db(*impl_, lane);
  const postgres::Result row = db->execute(
      "SELECT email, phone, push_token, webhook_url FROM contacts WHERE user_id = $1", {user_id});
  if (row.empty()) return {};
  return {row[0].as_text(0), row[0].as_text(1), row[0].as_text(2), row[0].as_text(3)};
}

Contacts PostgresNotificationStore::update_contacts(std::string_view user_id,
                                                    const std::function<void(Contacts&)>& patch) {
  Impl::Borrowed db(*impl_);
  postgres::Transaction tx = db->transaction();
  tx.execute(
      "INSERT INTO contacts (user_id, email, phone, push_token, webhook_url) "
      "VALUES ($1, '', '', '', '') ON CONFLICT DO NOTHING",
      {user_id});
  const postgres::Result row = tx.execute(
      "SELECT email, phone, push_token, webhook_url FROM contacts WHERE user_id = $1 FOR UPDATE",
      {user_id});
  Contacts contacts{row[0].as_text(0), row[0].as_text(1), row[0].as_text(2), row[0].as_text(3)};
  patch(contacts);
  tx.execute(
      "UPDATE contacts SET email = $2, phone = $3, push_token = $4, webhook_url = $5 "
      "WHERE user_id = $1",
      {user_id, contacts.email, contacts.phone, contacts.push_token, contacts.webhook_url});
  tx.commit();
  return contacts;
}

}  // namespace keel::notifier
