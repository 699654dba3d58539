// PostgresNotificationStore: the notifier's store on PostgreSQL, for several worker processes or
// servers on one database. A claim is one statement,
//   UPDATE deliveries ... WHERE seq IN (SELECT seq ... ORDER BY sort_key, seq LIMIT n
//                                       FOR UPDATE SKIP LOCKED) RETURNING ...
// so that concurrent claimers skip each other's rows instead of waiting or double-claiming;
// idempotency keys are claimed with INSERT ... ON CONFLICT DO NOTHING in the same transaction
// as the notification.
//
// Thread safety: every method is safe to call from any number of threads; each call borrows one
// of `connections` connections (waiting while all are in use).
#pragma once

#include <memory>
#include <string>

#include "case_studies/notification_system/store.h"

namespace keel::notifier {

struct PostgresStoreOptions {
  // Connections held open. REQUIRES: >= 1. Default: 4.
  std::size_t connections = 4;
  QueueRules rules = {};
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
  std::vector<Claim> claim(Pool pool, WallTime now, Duration lease, std::size_t max) override;
  std::optional<int> begin_send(std::string_view delivery_id, std::string_view lease_token,
                                WallTime now, Duration lease) override;
  bool complete(std::string_view delivery_id, std::string_view lease_token,
                const Completion& completion, WallTime now) override;
  std::optional<std::vector<std::string>> cancel(std::string_view notification_id,
                                                 WallTime now) override;
  RetryResult retry(std::string_view delivery_id, WallTime now) override;
  std::vector<Delivery> dead_letters(std::size_t limit) override;
  std::optional<WallTime> next_due(Pool pool) override;
  std::map<DeliveryStatus, std::int64_t> count_by_status() override;
  Preferences preferences(std::string_view user_id) override;
  Preferences update_preferences(std::string_view user_id,
                                 const std::function<void(Preferences&)>& patch) override;
  Contacts contacts(std::string_view user_id) override;
  Contacts update_contacts(std::string_view user_id,
                           const std::function<void(Contacts&)>& patch) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::notifier
