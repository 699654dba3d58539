// A real PostgreSQL answers libpqxx: the ground the PostgreSQL adapters stand on.
#include <gtest/gtest.h>

#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "tests/support/postgres_server.h"

namespace keel::testing {
namespace {

class PostgresSmokeTest : public ::testing::Test {
 protected:
  // One server for the suite; a failed start fails every test with the reason (never a skip).
  static void SetUpTestSuite() {
    try {
      server_ = PostgresServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  // Each test gets its own database, named after it.
  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start PostgreSQL: " << start_error_;
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    connection_ = std::make_unique<pqxx::connection>(server_->create_database(name));
    pqxx::work tx(*connection_);
    tx.exec0("CREATE TABLE orders (id integer PRIMARY KEY, item text NOT NULL)");
    tx.commit();
  }

  long order_count() {
    pqxx::read_transaction tx(*connection_);
    return tx.exec1("SELECT count(*) FROM orders")[0].as<long>();
  }

  static inline std::unique_ptr<PostgresServer> server_;
  static inline std::string start_error_;
  std::unique_ptr<pqxx::connection> connection_;
};

TEST_F(PostgresSmokeTest, CommittedRowsCanBeReadBack) {
  {
    pqxx::work tx(*connection_);
    tx.exec_params0("INSERT INTO orders (id, item) VALUES ($1, $2)", 1, "keyboard");
    tx.exec_params0("INSERT INTO orders (id, item) VALUES ($1, $2)", 2, "mouse");
    tx.commit();
  }

  pqxx::read_transaction tx(*connection_);
  const pqxx::result rows = tx.exec("SELECT id, item FROM orders ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0].as<int>(), 1);
  EXPECT_EQ(rows[0][1].as<std::string>(), "keyboard");
  EXPECT_EQ(rows[1][0].as<int>(), 2);
  EXPECT_EQ(rows[1][1].as<std::string>(), "mouse");
}

TEST_F(PostgresSmokeTest, RolledBackTransactionLeavesNothing) {
  {
    pqxx::work tx(*connection_);
    tx.exec_params0("INSERT INTO orders (id, item) VALUES ($1, $2)", 1, "keyboard");
    tx.abort();
  }
  {
    pqxx::work tx(*connection_);
    tx.exec_params0("INSERT INTO orders (id, item) VALUES ($1, $2)", 2, "mouse");
    // Destroyed without commit(): libpqxx rolls back.
  }
  EXPECT_EQ(order_count(), 0);
}

TEST_F(PostgresSmokeTest, DatabasesCreatedForTestsAreIsolated) {
  pqxx::connection other(server_->create_database("isolation_other"));
  pqxx::work tx(other);
  EXPECT_EQ(tx.exec1("SELECT to_regclass('orders') IS NULL")[0].as<bool>(), true)
      << "a table created in one test database is visible in another";
}

}  // namespace
}  // namespace keel::testing
