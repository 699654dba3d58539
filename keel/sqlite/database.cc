#include "keel/sqlite/database.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>

#include "keel/core/internal/log.h"

namespace keel::sqlite {
namespace {

[[noreturn]] void fail(sqlite3* db, int code, std::string_view sql) {
  throw Error(code, fmt::format("{} (code {}) in \"{}\"", sqlite3_errmsg(db), code, sql));
}

void check(sqlite3* db, int code, std::string_view sql) {
  if (code != SQLITE_OK) fail(db, code, sql);
}

// SQLite takes lengths as int.
int length_of(std::size_t size, std::string_view what) {
  if (size > static_cast<std::size_t>(INT_MAX)) {
    throw std::invalid_argument(fmt::format("sqlite: {} of {} bytes is too long", what, size));
  }
  return static_cast<int>(size);
}

std::string_view begin_sql(TransactionMode mode) {
  switch (mode) {
    case TransactionMode::deferred:
      return "BEGIN DEFERRED";
    case TransactionMode::immediate:
      return "BEGIN IMMEDIATE";
    case TransactionMode::exclusive:
      return "BEGIN EXCLUSIVE";
  }
  throw std::invalid_argument("sqlite: unknown TransactionMode");
}

void run(sqlite3* db, std::string_view sql) {
  const std::string text(sql);  // sqlite3_exec takes a NUL-terminated string
  check(db, sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr), sql);
}

// Whether `sql` holds a statement (rather than only whitespace, ';' and comments).
bool has_statement(sqlite3* db, std::string_view sql) {
  if (sql.find_first_not_of(" \t\r\n;") == std::string_view::npos) return false;
  sqlite3_stmt* next = nullptr;
  sqlite3_prepare_v2(db, sql.data(), length_of(sql.size(), "SQL"), &next, nullptr);
  const bool found = next != nullptr;
  sqlite3_finalize(next);
  return found || sqlite3_errcode(db) != SQLITE_OK;
}

bool is_in_memory(const std::string& path) {
  return path == ":memory:" || path.empty() || path.find("mode=memory") != std::string::npos;
}

}  // namespace

bool Error::is_constraint_violation() const noexcept { return (code_ & 0xff) == SQLITE_CONSTRAINT; }

bool Error::is_busy() const noexcept {
  return (code_ & 0xff) == SQLITE_BUSY || (code_ & 0xff) == SQLITE_LOCKED;
}

// Statement

Statement::Statement(Statement&& other) noexcept
    : statement_(std::exchange(other.statement_, nullptr)),
      has_row_(std::exchange(other.has_row_, false)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(statement_);
    statement_ = std::exchange(other.statement_, nullptr);
    has_row_ = std::exchange(other.has_row_, false);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(statement_); }

void Statement::check_bind(int result, int index) const {
  if (result == SQLITE_RANGE) {
    throw std::invalid_argument(
        fmt::format("sqlite: parameter index {} is out of range (the statement has {}) in \"{}\"",
                    index, sqlite3_bind_parameter_count(statement_), sql()));
  }
  check(sqlite3_db_handle(statement_), result, sql());
}

Statement& Statement::bind_int64(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(statement_, index, value), index);
  return *this;
}

Statement& Statement::bind_double(int index, double value) {
  check_bind(sqlite3_bind_double(statement_, index, value), index);
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view value) {
  check_bind(sqlite3_bind_text(statement_, index, value.data(), length_of(value.size(), "text"),
                               SQLITE_TRANSIENT),
             index);
  return *this;
}

Statement& Statement::bind_blob(int index, std::span<const std::byte> value) {
  // A null pointer would bind NULL, not an empty blob.
  static constexpr std::byte kEmpty{};
  const void* data = value.empty() ? &kEmpty : static_cast<const void*>(value.data());
  check_bind(
      sqlite3_bind_blob(statement_, index, data, length_of(value.size(), "blob"), SQLITE_TRANSIENT),
      index);
  return *this;
}

Statement& Statement::bind_null(int index) {
  check_bind(sqlite3_bind_null(statement_, index), index);
  return *this;
}

Statement& Statement::clear_bindings() {
  sqlite3_clear_bindings(statement_);
  return *this;
}

int Statement::parameter_index(std::string_view name) const {
  const std::string text(name);
  const int index = sqlite3_bind_parameter_index(statement_, text.c_str());
  if (index == 0) {
    throw std::invalid_argument(
        fmt::format("sqlite: no parameter named '{}' in \"{}\"", name, sql()));
  }
  return index;
}

bool Statement::step() {
  has_row_ = false;
  const int result = sqlite3_step(statement_);
  if (result == SQLITE_ROW) {
    has_row_ = true;
    return true;
  }
  if (result == SQLITE_DONE) return false;
  fail(sqlite3_db_handle(statement_), result, sql());
}

void Statement::reset() {
  has_row_ = false;
  // Returns the error of the last step, already reported by step().
  sqlite3_reset(statement_);
}

int Statement::column_count() const noexcept { return sqlite3_column_count(statement_); }

void Statement::require_column(int column) const {
  if (!has_row_) {
    throw std::logic_error(
        fmt::format("sqlite: column {} read with no current row in \"{}\"", column, sql()));
  }
  if (column < 0 || column >= column_count()) {
    throw std::invalid_argument(
        fmt::format("sqlite: column index {} is out of range (the row has {}) in \"{}\"", column,
                    column_count(), sql()));
  }
}

void Statement::require_value(int column) const {
  require_column(column);
  if (sqlite3_column_type(statement_, column) == SQLITE_NULL) {
    throw std::logic_error(fmt::format("sqlite: column {} ({}) is NULL in \"{}\"", column,
                                       sqlite3_column_name(statement_, column), sql()));
  }
}

bool Statement::column_is_null(int column) const {
  require_column(column);
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int column) const {
  require_value(column);
  return sqlite3_column_int64(statement_, column);
}

double Statement::column_double(int column) const {
  require_value(column);
  return sqlite3_column_double(statement_, column);
}

std::string Statement::column_text(int column) const {
  require_value(column);
  const auto* text = sqlite3_column_text(statement_, column);
  const int size = sqlite3_column_bytes(statement_, column);  // after the text conversion
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::vector<std::byte> Statement::column_blob(int column) const {
  require_value(column);
  const auto* data = static_cast<const std::byte*>(sqlite3_column_blob(statement_, column));
  const auto size = static_cast<std::size_t>(sqlite3_column_bytes(statement_, column));
  return data == nullptr ? std::vector<std::byte>() : std::vector<std::byte>(data, data + size);
}

std::string_view Statement::sql() const noexcept {
  const char* text = statement_ == nullptr ? nullptr : sqlite3_sql(statement_);
  return text == nullptr ? std::string_view() : std::string_view(text);
}

// Transaction

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ == nullptr || sqlite3_get_autocommit(db_) != 0) return;  // SQLite may have rolled back
  if (sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr) != SQLITE_OK) {
    keel::internal::logger().warn("sqlite: rollback of an abandoned transaction failed: {}",
                                  sqlite3_errmsg(db_));
  }
}

void Transaction::commit() {
  if (db_ == nullptr) throw std::logic_error("sqlite: commit() of a transaction that has ended");
  sqlite3* db = std::exchange(db_, nullptr);
  const int result = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (result == SQLITE_OK) return;
  const Error error(result, fmt::format("{} (code {}) in \"COMMIT\"", sqlite3_errmsg(db), result));
  // A failed COMMIT may leave the transaction open (SQLITE_BUSY): end it as promised.
  if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  throw error;
}

void Transaction::rollback() {
  if (db_ == nullptr) throw std::logic_error("sqlite: rollback() of a transaction that has ended");
  sqlite3* db = std::exchange(db_, nullptr);
  if (sqlite3_get_autocommit(db) != 0) return;
  run(db, "ROLLBACK");
}

// Database

Database::Database(const std::string& path, DatabaseOptions options) : path_(path) {
  if (options.busy_timeout < Duration::zero()) {
    throw std::invalid_argument("sqlite: busy_timeout must be >= 0");
  }
  const int flags =
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  const int opened = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (opened != SQLITE_OK) {
    const std::string message =
        db_ == nullptr ? sqlite3_errstr(opened) : std::string(sqlite3_errmsg(db_));
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw Error(opened, fmt::format("cannot open '{}': {} (code {})", path, message, opened));
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(options.busy_timeout).count();
    sqlite3_busy_timeout(db_, static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)));
    if (options.foreign_keys) run(db_, "PRAGMA foreign_keys = ON");
    if (options.wal && !options.read_only && !is_in_memory(path)) {
      run(db_, "PRAGMA journal_mode = WAL");
    }
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Database::Database(Database&& other) noexcept
    : path_(std::move(other.path_)), db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    path_ = std::move(other.path_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

// close_v2: should a Statement still be alive, the connection closes when it is finalized.
Database::~Database() { sqlite3_close_v2(db_); }

void Database::execute(std::string_view sql) { run(db_, sql); }

Statement Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int result = sqlite3_prepare_v2(db_, sql.data(), length_of(sql.size(), "SQL"), &raw, &tail);
  Statement statement(raw);  // finalized on every path below
  check(db_, result, sql);
  if (raw == nullptr) {
    throw std::invalid_argument(fmt::format("sqlite: no statement in \"{}\"", sql));
  }
  const std::string_view rest = sql.substr(static_cast<std::size_t>(tail - sql.data()));
  if (has_statement(db_, rest)) {
    throw std::invalid_argument(fmt::format(
        "sqlite: prepare() takes one statement, \"{}\" follows the first (use execute() for "
        "a script)",
        rest));
  }
  return statement;
}

Transaction Database::transaction(TransactionMode mode) {
  run(db_, begin_sql(mode));
  return Transaction(db_);
}

std::int64_t Database::last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_); }

std::int64_t Database::changes() const noexcept { return sqlite3_changes64(db_); }

bool Database::in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace keel::sqlite
