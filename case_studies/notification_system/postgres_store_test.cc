// The store conformance suite on a real PostgreSQL server (tests/support), one database per test.
#include "case_studies/notification_system/postgres_store.h"

#include <atomic>

#include "case_studies/notification_system/store_conformance.h"
#include "tests/support/postgres_server.h"

namespace keel::notifier::testing {
namespace {

keel::testing::PostgresServer& server() {
  static const std::unique_ptr<keel::testing::PostgresServer> instance =
      keel::testing::PostgresServer::start();
  return *instance;
}

class PostgresEnvironment final : public StoreEnvironment {
 public:
  PostgresEnvironment() {
    static std::atomic<int> next{0};
    connection_string_ = server().create_database(fmt::format("notifier_{}", next.fetch_add(1)));
  }
  std::unique_ptr<NotificationStore> open(QueueRules rules) override {
    return std::make_unique<PostgresNotificationStore>(
        connection_string_, PostgresStoreOptions{.connections = 2, .rules = rules});
  }

 private:
  std::string connection_string_;
};

std::unique_ptr<StoreEnvironment> make_postgres() {
  return std::make_unique<PostgresEnvironment>();
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest,
                         ::testing::Values(StoreKind{"server", &make_postgres}), store_name);

}  // namespace
}  // namespace keel::notifier::testing
