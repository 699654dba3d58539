// SqliteNotificationStore: the notifier's store in one SQLite file (WAL), the default. Claims run
// in BEGIN IMMEDIATE transactions, so several stores on one file (processes on one machine) never
// claim the same delivery. Two connections, each used under its own mutex with a cache of
// prepared statements: a writer (every write, and reads inside write transactions) and a reader
// for plain lookups, which WAL lets run beside the writer (one connection for ":memory:").
//
// Thread safety: every method is safe to call from any number of threads.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "case_studies/notification_system/store.h"

namespace keel::notifier {

struct SqliteStoreOptions {
  QueueRules rules = {};
  // PRAGMA synchronous=FULL: every commit is synced to disk, so an accepted notification
  // survives a power loss, at several times the cost per transaction. Default: false
  // (synchronous=NORMAL with WAL: commits survive a crash of the process, not of the machine).
  bool sync_every_commit = false;
};

class SqliteNotificationStore final : public NotificationStore {
 public:
  // Opens (creating tables when missing) the database at `path` (":memory:" for tests); a file
  // of an earlier release gets the columns and tables it lacks, its idempotency keys scoped per
  // user, in one transaction. Throws keel::sqlite::Error when it cannot.
  explicit SqliteNotificationStore(const std::string& path, SqliteStoreOptions options = {});
  ~SqliteNotificationStore() override;

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
