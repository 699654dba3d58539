// keel::sqlite::Database: one connection to an SQLite database (a file, or ":memory:"), with
// prepared statements and transactions; the embedded storage under keel's stores.
//
//   sqlite::Database db("app.db");
//   db.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)");
//   auto insert = db.prepare("INSERT INTO users (id, name) VALUES (?1, ?2)");
//   insert.bind_int64(1, 42).bind_text(2, "Ada");
//   insert.step();
//
// A file database is opened in WAL mode with a busy timeout by default, so readers run alongside
// the writer and a writer waits (up to busy_timeout) for another connection's write to finish
// instead of failing at once. Foreign keys are enforced by default.
//
// Errors: SQLite failures throw sqlite::Error (a keel::BackendError for "sqlite") whose message
// names SQLite's error and the SQL; misuse (a parameter or column index out of range, a column
// read with no row) throws std::invalid_argument or std::logic_error.
//
// Thread safety: a Database is one SQLite connection, opened in multi-thread mode: use it, and
// the Statements and Transactions made from it, from one thread at a time (one Database per
// thread, or every use under one mutex of the caller's). Distinct Databases on the same file may
// be used concurrently: that is what WAL and the busy timeout are for. Statements and
// Transactions must not outlive their Database.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/errors.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keel::sqlite {

// An SQLite failure. code() is SQLite's extended result code (e.g. SQLITE_CONSTRAINT_UNIQUE).
class Error : public BackendError {
 public:
  Error(int code, const std::string& message) : BackendError("sqlite", message), code_(code) {}
  int code() const noexcept { return code_; }
  // A UNIQUE, PRIMARY KEY, NOT NULL, CHECK or FOREIGN KEY constraint failed (SQLITE_CONSTRAINT).
  bool is_constraint_violation() const noexcept;
  // Another connection held the lock for longer than busy_timeout (SQLITE_BUSY or _LOCKED).
  bool is_busy() const noexcept;

 private:
  int code_;
};

struct DatabaseOptions {
  // Opens an existing database for reading only. Default: false (read-write, and the file is
  // created when missing).
  bool read_only = false;
  // journal_mode=WAL: readers do not block the writer nor the writer the readers, and commits
  // are cheaper. Not applied to in-memory or read-only databases. Default: true.
  bool wal = true;
  // How long a statement waits for a lock held by another connection before failing with
  // SQLITE_BUSY. Default: 5 s. REQUIRES: >= 0 (0 fails at once).
  Duration busy_timeout = std::chrono::seconds(5);
  // Enforces FOREIGN KEY constraints (SQLite's own default is off). Default: true.
  bool foreign_keys = true;
};

// A prepared statement: bind parameters, step() through the rows, reset() to run it again.
// Move-only.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are numbered from 1, as SQLite numbers them (?, ?NNN, :name, @name, $name).
  // Text and blobs are copied. Throws std::invalid_argument for an index out of range.
  Statement& bind_int64(int index, std::int64_t value);
  Statement& bind_double(int index, double value);
  Statement& bind_text(int index, std::string_view value);
  Statement& bind_blob(int index, std::span<const std::byte> value);
  Statement& bind_null(int index);
  // Sets every parameter back to NULL.
  Statement& clear_bindings();
  // The index of a named parameter (":name", "@name" or "$name", prefix included). Throws
  // std::invalid_argument when the statement has no such parameter.
  int parameter_index(std::string_view name) const;

  // Runs the statement to its next row: true when a row is ready to be read, false when the
  // statement has finished (for INSERT, UPDATE, DELETE: at once). Throws Error.
  bool step();
  // Rewinds the statement so that step() runs it again; bindings are kept. A statement left on
  // a row (not stepped to its end nor reset) keeps its read open, and COMMIT then fails with
  // SQLITE_BUSY: reset (or destroy) a statement read only partly.
  void reset();

  // Columns of the current row, numbered from 0. Each throws std::logic_error when there is no
  // current row (the last step() did not return true), std::invalid_argument for an index out
  // of range, and the typed accessors throw std::logic_error for a NULL (check column_is_null
  // first). Values of another type are converted as SQLite converts them (text "12" reads as 12).
  int column_count() const noexcept;
  bool column_is_null(int column) const;
  std::int64_t column_int64(int column) const;
  double column_double(int column) const;
  std::string column_text(int column) const;
  std::vector<std::byte> column_blob(int column) const;

  // The SQL text, as prepared.
  std::string_view sql() const noexcept;

 private:
  friend class Database;
  explicit Statement(sqlite3_stmt* statement) noexcept : statement_(statement) {}
  void check_bind(int result, int index) const;
  void require_value(int column) const;  // a current row, a column in range, not NULL
  void require_column(int column) const;

  sqlite3_stmt* statement_;
  bool has_row_ = false;
};

enum class TransactionMode {
  deferred,   // BEGIN: takes locks on first read / first write (a read that later writes may
              // fail with SQLITE_BUSY without waiting, if another connection wrote meanwhile)
  immediate,  // BEGIN IMMEDIATE: takes the write lock now (waiting up to busy_timeout)
  exclusive,  // BEGIN EXCLUSIVE: as immediate; in other journal modes also keeps readers out
};

class Database;

// A transaction in progress: commit() or rollback(); destroyed without either, it rolls back.
// Transactions do not nest. Move-only.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // Throws Error when the commit fails (the transaction is then rolled back), std::logic_error
  // when the transaction already ended.
  void commit();
  void rollback();
  bool active() const noexcept { return db_ != nullptr; }

 private:
  friend class Database;
  explicit Transaction(sqlite3* db) noexcept : db_(db) {}
  sqlite3* db_;  // null once committed or rolled back
};

class Database {
 public:
  // Opens (or creates) the database at `path`: a file name, ":memory:" for a private in-memory
  // database, or a "file:" URI. Throws Error when it cannot be opened or set up, and
  // std::invalid_argument for a negative busy_timeout.
  explicit Database(const std::string& path, DatabaseOptions options = {});
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more ';'-separated statements without parameters, discarding any rows (schema,
  // PRAGMAs). Throws Error.
  void execute(std::string_view sql);
  // Compiles one statement. Throws Error for invalid SQL, std::invalid_argument when `sql` holds
  // more than one statement.
  Statement prepare(std::string_view sql);
  // Begins a transaction. Throws Error (e.g. SQLITE_BUSY after busy_timeout, or when a
  // transaction is already open on this connection).
  Transaction transaction(TransactionMode mode = TransactionMode::immediate);

  // The rowid of the last row this connection inserted.
  std::int64_t last_insert_rowid() const noexcept;
  // Rows changed by the last INSERT, UPDATE or DELETE of this connection.
  std::int64_t changes() const noexcept;
  // Whether a transaction is open on this connection.
  bool in_transaction() const noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace keel::sqlite
