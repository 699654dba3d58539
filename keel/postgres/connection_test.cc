// Connection against a private PostgreSQL (tests/support): one server for the executable, one
// database per test. Starting PostgreSQL costs about a second, so the cases are few and broad.
#include "keel/postgres/connection.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/postgres_server.h"

#if defined(__SANITIZE_ADDRESS__)
// libpqxx 6.4 does not free the PGresult of a statement that finds its connection lost (in
// pqxx::connection_base::exec and exec_params): about 2 KB per lost connection, which keel cannot
// free. LeakSanitizer reads its suppressions from this hook; only allocations made inside libpqxx
// are concerned.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx\n"; }
#endif

namespace keel::postgres {
namespace {

using testing::PostgresServer;

class PostgresConnectionTest : public ::testing::Test {
 protected:
  // A failed start fails every test with the reason (never a skip).
  static void SetUpTestSuite() {
    try {
      server_ = PostgresServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start PostgreSQL: " << start_error_;
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    connection_string_ = server_->create_database(name);
    db_ = std::make_unique<Connection>(connection_string_);
    db_->execute(  // a script: without parameters, several statements may run at once
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE);"
        "CREATE INDEX users_by_name ON users (name)");
  }

  std::int64_t user_count() { return db_->execute("SELECT count(*) FROM users")[0].as_int64(0); }

  static inline std::unique_ptr<PostgresServer> server_;
  static inline std::string start_error_;
  std::string connection_string_;
  std::unique_ptr<Connection> db_;
};

TEST_F(PostgresConnectionTest, ParametersAndColumnsRoundTripWithTheirTypes) {
  const std::vector<std::byte> bytes{std::byte{0}, std::byte{0xab}, std::byte{0xff}};
  const Result result = db_->execute(
      "SELECT $1::bigint AS big, $2::float8, $3::boolean, $4::text, $5::bytea, $6::text, "
      "$7::float8",
      {std::numeric_limits<std::int64_t>::min(), 0.1, true, "caf\xc3\xa9 'quoted'", bytes,
       std::optional<std::string>(), -std::numeric_limits<double>::infinity()});
  ASSERT_EQ(result.size(), 1u);
  const Row row = result[0];
  ASSERT_EQ(row.size(), 7u);
  EXPECT_EQ(row.column_name(0), "big");
  EXPECT_EQ(row.as_int64(0), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(row.as_double(1), 0.1) << "doubles are sent and read back exactly";
  EXPECT_TRUE(row.as_bool(2));
  EXPECT_EQ(row.as_text(3), "caf\xc3\xa9 'quoted'") << "parameters are never spliced into SQL";
  EXPECT_EQ(row.as_bytes(4), bytes);
  EXPECT_TRUE(row.is_null(5));
  EXPECT_THROW(row.as_text(5), std::logic_error) << "a NULL read as a value";
  EXPECT_TRUE(std::isinf(row.as_double(6)));
  EXPECT_THROW(row.as_int64(3), std::invalid_argument) << "text that is not a number";
  EXPECT_THROW(row.as_text(7), std::invalid_argument) << "a column out of range";
  EXPECT_THROW(result[1], std::invalid_argument) << "a row out of range";
}

TEST_F(PostgresConnectionTest, CommittedTransactionIsVisibleAndAbandonedOneLeavesNothing) {
  {
    Transaction tx = db_->transaction();
    const Result inserted =
        tx.execute("INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4)", {1, "ada", 2, "bob"});
    EXPECT_EQ(inserted.affected_rows(), 2u);
    EXPECT_THROW(db_->execute("SELECT 1"), std::logic_error) << "the connection is in use";
    EXPECT_THROW(db_->transaction(), std::logic_error) << "transactions do not nest";
    tx.commit();
    EXPECT_THROW(tx.commit(), std::logic_error);
  }
  {
    Transaction tx = db_->transaction(IsolationLevel::serializable);
    tx.execute("INSERT INTO users (id, name) VALUES ($1, $2)", {3, "eve"});
  }  // destroyed without commit(): rolled back
  {
    Transaction tx = db_->transaction();
    tx.execute("DELETE FROM users");
    tx.rollback();
  }

  std::vector<std::string> names;
  for (const Row& row : db_->execute("SELECT name FROM users ORDER BY id")) {
    names.push_back(row.as_text(0));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"ada", "bob"}));
}

TEST_F(PostgresConnectionTest, FailuresCarryTheServersMessageAndSqlstate) {
  db_->execute("INSERT INTO users (id, name, email) VALUES ($1, $2, $3)", {1, "ada", "a@x"});
  try {
    db_->execute("INSERT INTO users (id, name, email) VALUES ($1, $2, $3)", {2, "eve", "a@x"});
    FAIL() << "a duplicate email was inserted";
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_TRUE(e.is_constraint_violation());
    EXPECT_EQ(e.backend(), "postgres");
    const std::string message = e.what();
    EXPECT_NE(message.find("users_email_key"), std::string::npos) << message;
    EXPECT_NE(message.find("INSERT INTO users"), std::string::npos) << message;
  }
  try {
    db_->execute("SELEC 1");
    FAIL() << "invalid SQL ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "42601") << e.what();  // syntax_error
  }
  EXPECT_THROW(Connection("host=127.0.0.1 port=1 connect_timeout=5"), Error);
}

TEST_F(PostgresConnectionTest, SerializableWriteSkewFailsOneTransactionAsRetryable) {
  Connection other(connection_string_);
  Transaction first = db_->transaction(IsolationLevel::serializable);
  Transaction second = other.transaction(IsolationLevel::serializable);
  // Each inserts a row after checking there are none: one of the two must fail.
  EXPECT_EQ(first.execute("SELECT count(*) FROM users")[0].as_int64(0), 0);
  EXPECT_EQ(second.execute("SELECT count(*) FROM users")[0].as_int64(0), 0);
  first.execute("INSERT INTO users (id, name) VALUES (1, 'first')");
  second.execute("INSERT INTO users (id, name) VALUES (2, 'second')");
  first.commit();
  try {
    second.commit();
    FAIL() << "both transactions of a write skew committed";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_transaction_rollback()) << e.sqlstate() << ": " << e.what();
  }
  EXPECT_EQ(user_count(), 1);
}

TEST_F(PostgresConnectionTest, LostConnectionIsAConnectionFailureAndTheNextStatementReconnects) {
  const std::int64_t pid = db_->execute("SELECT pg_backend_pid()")[0].as_int64(0);
  Connection admin(connection_string_);
  ASSERT_TRUE(admin.execute("SELECT pg_terminate_backend($1)", {pid})[0].as_bool(0));

  try {
    db_->execute("SELECT 1");
    FAIL() << "a statement ran on a terminated connection";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_connection_failure()) << e.sqlstate() << ": " << e.what();
  }
  EXPECT_EQ(db_->execute("SELECT 41 + 1")[0].as_int64(0), 42);
}

}  // namespace
}  // namespace keel::postgres
