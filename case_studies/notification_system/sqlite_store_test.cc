// The store conformance suite on SQLite files.
#include "case_studies/notification_system/sqlite_store.h"

#include "case_studies/notification_system/store_conformance.h"
#include "tests/support/temp_dir.h"

namespace keel::notifier::testing {
namespace {

class SqliteEnvironment final : public StoreEnvironment {
 public:
  std::unique_ptr<NotificationStore> open(QueueRules rules) override {
    return std::make_unique<SqliteNotificationStore>((dir_.path() / "notifier.db").string(),
                                                     SqliteStoreOptions{.rules = rules});
  }

 private:
  keel::testing::TempDir dir_{"keel-notifier-store"};
};

std::unique_ptr<StoreEnvironment> make_sqlite() { return std::make_unique<SqliteEnvironment>(); }

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(StoreKind{"file", &make_sqlite}), store_name);

}  // namespace
}  // namespace keel::notifier::testing
