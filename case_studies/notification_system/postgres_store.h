// PostgresNotificationStore: the notifier's store on PostgreSQL, for several worker processes or
// servers on one database. A claim is one statement,
//   UPDATE deliveries ... WHERE seq IN (SELECT seq ... ORDER BY sort_key, seq LIMIT n
//                                       FOR UPDATE SKIP LOCKED) RETURNING ...
// so that concurrent claimers skip each other's rows instead of waiting or double-claiming;
// idempotency keys are claimed with INSERT ... ON CONFLICT DO NOTHING in the same transaction
// as the notification.
//
// Leases are measured on the server's clock (LeaseClock::database), so that a node whose clock
// runs ahead never takes over a lease that still holds; due times (send_at, retries) are the
// callers' wall clock.
//
// Thread safety: every method is safe to call from any number of threads; each call borrows one
// of `connections` connections (waiting while all are in use). critical_connections of them
// serve only critical work (claims, sends and intake of critical deliveries, whose lease tokens
// say so), so a standard backlog or busy HTTP handlers cannot take every connection from a
// password reset.
#pragma once

#include <memory>
#include <string>

#include "case_studies/notification_system/store.h"

namespace keel::notifier {

enum class LeaseClock {
  database,  // the server's clock (statement_timestamp()): one clock for every node
  caller,    // the `now` passed to each call (tests on a ManualClock)
};

struct PostgresStoreOptions {
  // Connections held open, the reserved ones included. REQUIRES: > critical_connections.
  // Default: 6.
  std::size_t connections = 6;
  // Connections only critical work may use (it also uses the others when they are idle).
  // REQUIRES: >= 1. Default: 2 (the notifier's default critical workers).
  std::size_t critical_connections = 2;
  QueueRules rules = {};
  // What lease times are measured on. Default: the database's clock.
  LeaseClock lease_clock = LeaseClock::database;
};

class PostgresNotificationStore final : public NotificationStore {
 public:
  // Connects and creates the tables when missing. Throws keel::postgres::Error when it cannot,
  // std::invalid_argument for invalid options.
  explicit PostgresNotificationStore(const std::string& connection_string,
                                     PostgresStoreOptions options = {});
  ~PostgresNotificationStore() override;

  InsertResult insert(const Notification& notification, WallTime key_cutoff) override;
  std::optional<Notification> find(std::string_view id) override;
  std::vector<Claim> claim(Pool pool, WallTime now, Duration lease, std::size_t max,
                           int max_attempts) override;
  std::optional<int> begin_send(std::string_view delivery_id, std::string_view lease_token,
                                WallTime now, Duration lease) override;
  std::optional<DeliveryStatus> complete(std::string_view delivery_id, std::string_view lease_token,
                                         const Completion& completion, WallTime now) override;
  std::optional<std::vector<std::string>> cancel(std::string_view notification_id,
                                                 WallTime now) override;
  RetryResult retry(std::string_view delivery_id, WallTime now) override;
  std::vector<Delivery> dead_letters(std::size_t limit) override;
  std::optional<WallTime> next_due(Pool pool) override;
  std::map<DeliveryStatus, std::int64_t> count_by_status() override;
  Preferences preferences(std::string_view user_id, Pool lane) override;
  Preferences update_preferences(std::string_view user_id,
                                 const std::function<void(Preferences&)>& patch) override;
  Contacts contacts(std::string_view user_id, Pool lane) override;
  Contacts update_contacts(std::string_view user_id,
                           const std::function<void(Contacts&)>& patch) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::notifier
