#include "keel/sqlite/database.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace keel::sqlite {
namespace {

using std::chrono::milliseconds;

class SqliteDatabaseTest : public ::testing::Test {
 protected:
  SqliteDatabaseTest() {
    db_.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);"
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB, score REAL)");
  }

  std::int64_t count(std::string_view table) {
    Statement statement = db_.prepare("SELECT count(*) FROM " + std::string(table));
    EXPECT_TRUE(statement.step());
    return statement.column_int64(0);
  }

  void insert_user(std::int64_t id, std::string_view name, std::string_view email) {
    Statement insert = db_.prepare("INSERT INTO users (id, name, email) VALUES (?1, ?2, ?3)");
    insert.bind_int64(1, id).bind_text(2, name).bind_text(3, email);
    EXPECT_FALSE(insert.step());
  }

  Database db_{":memory:"};
};

TEST_F(SqliteDatabaseTest, BoundValuesReadBackWithTheirTypes) {
  const std::vector<std::byte> payload{std::byte{0}, std::byte{0xff}, std::byte{7}};
  Statement insert = db_.prepare("INSERT INTO blobs (id, data, score) VALUES (?, ?, ?)");
  insert.bind_int64(1, std::numeric_limits<std::int64_t>::max())
      .bind_blob(2, payload)
      .bind_double(3, 0.1);
  EXPECT_FALSE(insert.step());

  Statement select = db_.prepare("SELECT id, data, score FROM blobs");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_count(), 3);
  EXPECT_EQ(select.column_int64(0), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(select.column_blob(1), payload);
  EXPECT_EQ(select.column_double(2), 0.1);
  EXPECT_FALSE(select.step()) << "one row was inserted";
}

TEST_F(SqliteDatabaseTest, TextKeepsEmbeddedNulsAndUtf8) {
  const std::string text("caf\xc3\xa9\0tail", 10);
  insert_user(1, text, "a@example.com");
  Statement select = db_.prepare("SELECT name FROM users WHERE id = 1");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_text(0), text);
}

TEST_F(SqliteDatabaseTest, NullIsReportedAndTypedReadsOfNullThrow) {
  Statement insert = db_.prepare("INSERT INTO blobs (id, data) VALUES (1, ?)");
  insert.bind_null(1);
  insert.step();
  Statement empty = db_.prepare("INSERT INTO blobs (id, data) VALUES (2, ?)");
  empty.bind_blob(1, std::span<const std::byte>());
  empty.step();

  Statement select = db_.prepare("SELECT data FROM blobs ORDER BY id");
  ASSERT_TRUE(select.step());
  EXPECT_TRUE(select.column_is_null(0));
  EXPECT_THROW(select.column_int64(0), std::logic_error);
  EXPECT_THROW(select.column_text(0), std::logic_error);
  ASSERT_TRUE(select.step());
  EXPECT_FALSE(select.column_is_null(0)) << "an empty blob is not NULL";
  EXPECT_TRUE(select.column_blob(0).empty());
}

TEST_F(SqliteDatabaseTest, ResetRunsAStatementAgainWithNewBindings) {
  Statement insert = db_.prepare("INSERT INTO users (id, name) VALUES (?1, ?2)");
  for (std::int64_t id = 1; id <= 3; ++id) {
    insert.bind_int64(1, id).bind_text(2, "user-" + std::to_string(id));
    insert.step();
    insert.reset();
  }
  EXPECT_EQ(count("users"), 3);
  EXPECT_EQ(db_.last_insert_rowid(), 3);
}

TEST_F(SqliteDatabaseTest, NamedParametersResolveToTheirIndex) {
  Statement insert = db_.prepare("INSERT INTO users (id, name) VALUES (:id, :name)");
  insert.bind_int64(insert.parameter_index(":id"), 7)
      .bind_text(insert.parameter_index(":name"), "n");
  insert.step();
  EXPECT_EQ(count("users"), 1);
  EXPECT_THROW(insert.parameter_index(":missing"), std::invalid_argument);
}

TEST_F(SqliteDatabaseTest, MisuseThrowsNamingTheIndex) {
  Statement select = db_.prepare("SELECT name FROM users WHERE id = ?");
  try {
    select.bind_int64(2, 1);
    FAIL() << "binding parameter 2 of 1 did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("index 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(select.column_text(0), std::logic_error) << "no step() yet";
  insert_user(1, "ada", "ada@example.com");
  select.bind_int64(1, 1);
  ASSERT_TRUE(select.step());
  EXPECT_THROW(select.column_text(1), std::invalid_argument);
}

TEST_F(SqliteDatabaseTest, ConstraintViolationIsABackendErrorNamingTheConstraint) {
  insert_user(1, "ada", "ada@example.com");
  try {
    insert_user(2, "eve", "ada@example.com");
    FAIL() << "a duplicate email was inserted";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_constraint_violation()) << e.what();
    EXPECT_EQ(e.backend(), "sqlite");
    const std::string message = e.what();
    EXPECT_NE(message.find("UNIQUE constraint failed: users.email"), std::string::npos) << message;
    EXPECT_NE(message.find("INSERT INTO users"), std::string::npos) << message;
  }
}

TEST_F(SqliteDatabaseTest, InvalidSqlThrowsWithSqlitesMessage) {
  try {
    db_.prepare("SELECT nope FROM users");
    FAIL() << "an unknown column compiled";
  } catch (const BackendError& e) {
    EXPECT_NE(std::string(e.what()).find("no such column: nope"), std::string::npos) << e.what();
  }
  EXPECT_THROW(db_.execute("CREATE TABLE"), Error);
}

TEST_F(SqliteDatabaseTest, PrepareTakesExactlyOneStatement) {
  EXPECT_NO_THROW(db_.prepare("SELECT 1; -- trailing comment\n"));
  EXPECT_THROW(db_.prepare("SELECT 1; SELECT 2"), std::invalid_argument);
  EXPECT_THROW(db_.prepare("  "), std::invalid_argument);
}

TEST_F(SqliteDatabaseTest, CommittedTransactionKeepsItsWrites) {
  Transaction transaction = db_.transaction();
  EXPECT_TRUE(db_.in_transaction());
  insert_user(1, "ada", "ada@example.com");
  insert_user(2, "bob", "bob@example.com");
  transaction.commit();
  EXPECT_FALSE(db_.in_transaction());
  EXPECT_FALSE(transaction.active());
  EXPECT_EQ(count("users"), 2);
  EXPECT_THROW(transaction.commit(), std::logic_error);
}

TEST_F(SqliteDatabaseTest, AbandonedOrRolledBackTransactionLeavesNothing) {
  {
    Transaction transaction = db_.transaction(TransactionMode::deferred);
    insert_user(1, "ada", "ada@example.com");
  }
  {
    Transaction transaction = db_.transaction();
    insert_user(2, "bob", "bob@example.com");
    transaction.rollback();
  }
  EXPECT_FALSE(db_.in_transaction());
  EXPECT_EQ(count("users"), 0);
}

TEST_F(SqliteDatabaseTest, TransactionsDoNotNest) {
  Transaction outer = db_.transaction();
  EXPECT_THROW(db_.transaction(), Error);
  EXPECT_TRUE(outer.active());
}

TEST_F(SqliteDatabaseTest, ChangesCountsTheRowsOfTheLastWrite) {
  insert_user(1, "a", "a@x");
  insert_user(2, "b", "b@x");
  db_.execute("UPDATE users SET name = 'z'");
  EXPECT_EQ(db_.changes(), 2);
}

TEST_F(SqliteDatabaseTest, ForeignKeysAreEnforcedByDefault) {
  db_.execute(
      "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES "
      "users(id))");
  try {
    db_.execute("INSERT INTO orders (id, user_id) VALUES (1, 99)");
    FAIL() << "an order for a missing user was inserted";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_constraint_violation()) << e.what();
  }
}

TEST(SqliteDatabaseFileTest, FileDatabaseUsesWalAndIsSharedBetweenConnections) {
  const testing::TempDir dir("keel-sqlite");
  const std::string path = (dir.path() / "app.db").string();
  Database writer(path);
  writer.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)");

  {
    Statement mode = writer.prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode.step());
    EXPECT_EQ(mode.column_text(0), "wal");
  }  // a statement left on a row would keep COMMIT from completing

  Database reader(path, {.read_only = true});
  Transaction transaction = writer.transaction();
  writer.execute("INSERT INTO kv VALUES ('a', '1')");
  {
    Statement before = reader.prepare("SELECT count(*) FROM kv");
    ASSERT_TRUE(before.step());
    EXPECT_EQ(before.column_int64(0), 0) << "WAL: a reader sees the last commit, not the writer";
  }
  transaction.commit();

  Statement after = reader.prepare("SELECT v FROM kv WHERE k = 'a'");
  ASSERT_TRUE(after.step());
  EXPECT_EQ(after.column_text(0), "1");
}

TEST(SqliteDatabaseFileTest, SecondWriterFailsBusyWhenTheLockOutlastsTheBusyTimeout) {
  const testing::TempDir dir("keel-sqlite");
  const std::string path = (dir.path() / "app.db").string();
  Database first(path);
  first.execute("CREATE TABLE kv (k TEXT PRIMARY KEY)");
  Database second(path, {.busy_timeout = milliseconds(0)});

  Transaction holding = first.transaction();
  try {
    second.transaction();
    FAIL() << "two write transactions were open at once";
  } catch (const Error& e) {
    EXPECT_TRUE(e.is_busy()) << e.what();
  }
  holding.commit();
  EXPECT_NO_THROW(second.transaction().commit());
}

TEST(SqliteDatabaseFileTest, OpeningAMissingFileReadOnlyThrowsNamingThePath) {
  const testing::TempDir dir("keel-sqlite");
  const std::string path = (dir.path() / "missing.db").string();
  try {
    Database db(path, {.read_only = true});
    FAIL() << "a missing database opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SqliteDatabaseFileTest, MovedDatabaseKeepsItsConnection) {
  Database original(":memory:");
  original.execute("CREATE TABLE t (x INTEGER)");
  Database moved = std::move(original);
  moved.execute("INSERT INTO t VALUES (1)");
  Statement select = moved.prepare("SELECT x FROM t");
  ASSERT_TRUE(select.step());
  EXPECT_EQ(select.column_int64(0), 1);
  EXPECT_THROW(Database(":memory:", {.busy_timeout = milliseconds(-1)}), std::invalid_argument);
}

}  // namespace
}  // namespace keel::sqlite
