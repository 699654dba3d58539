// keel::postgres::Connection: one connection to PostgreSQL, running parameterised statements on
// their own or inside a transaction; the shared storage under keel's stores.
//
//   postgres::Connection db("host=127.0.0.1 port=5432 dbname=app user=app");
//   db.execute("UPDATE users SET name = $1 WHERE id = $2", {"Ada", 42});
//   postgres::Transaction tx = db.transaction();
//   const postgres::Result rows = tx.execute("SELECT id, name FROM users WHERE id = $1", {42});
//   for (const postgres::Row& row : rows) use(row.as_int64(0), row.as_text(1));
//   tx.commit();
//
// Parameters are sent separately from the SQL text (never spliced into it), in PostgreSQL's
// text format; results are read in text format and converted by the typed accessors.
//
// libpqxx (6.x) stays out of this header, behind pointers to implementation: the cost is one
// allocation per Result and per Transaction, small next to a round trip to the server.
//
// Errors: a failing statement throws postgres::Error (a keel::BackendError for "postgres") with
// the server's message and SQLSTATE; a lost connection throws an Error whose SQLSTATE is of
// class 08, and the next statement or transaction opens a new connection (libpqxx 6.4 leaks
// about 2 KB on that path). Misuse (a column out of range, a NULL read as a value, two
// transactions at once) throws std::invalid_argument or std::logic_error.
//
// Thread safety: a Connection, its Transaction and its Results are used from one thread at a
// time (one Connection per thread, or a pool). Results stay valid after their Connection is gone.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "keel/core/errors.h"

namespace keel::postgres {

class Error : public BackendError {
 public:
  Error(std::string sqlstate, const std::string& message)
      : BackendError("postgres", message), sqlstate_(std::move(sqlstate)) {}
  // The five-character SQLSTATE, e.g. "23505" (unique_violation); "08006" for a lost connection.
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  // Class 23: a UNIQUE, PRIMARY KEY, FOREIGN KEY, NOT NULL or CHECK constraint failed.
  bool is_constraint_violation() const noexcept { return sqlstate_.starts_with("23"); }
  // Class 40: the transaction was rolled back by the server (serialization failure, deadlock)
  // and may succeed if run again.
  bool is_transaction_rollback() const noexcept { return sqlstate_.starts_with("40"); }
  // Class 08: the connection failed or was lost.
  bool is_connection_failure() const noexcept { return sqlstate_.starts_with("08"); }

 private:
  std::string sqlstate_;
};

// One parameter ($1, $2, ...): NULL, a bool, an integer, a floating-point number, text, or bytes
// (for bytea). Converts implicitly, so that a call reads execute(sql, {42, "Ada", nullptr}).
class Param {
 public:
  Param(std::nullptr_t) noexcept {}
  Param(std::nullopt_t) noexcept {}
  Param(bool value) : text_(value ? "true" : "false") {}
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) Param(T value)
      : text_(format(value)) {}
  template <std::floating_point T>
  Param(T value) : text_(format(value)) {}
  Param(std::string_view value) : text_(value) {}
  Param(const char* value) : text_(value) {}
  Param(const std::string& value) : text_(value) {}
  Param(std::string&& value) noexcept : text_(std::move(value)) {}
  // Bytes, sent in bytea's hex format.
  Param(std::span<const std::byte> bytes);
  Param(const std::vector<std::byte>& bytes) : Param(std::span<const std::byte>(bytes)) {}
  // NULL when empty.
  template <class T>
  Param(const std::optional<T>& value) {
    if (value) text_ = Param(*value).text_;
  }

  // The value in PostgreSQL's text format; nullopt for NULL.
  const std::optional<std::string>& text() const noexcept { return text_; }

 private:
  template <class T>
  static std::string format(T value) {
    char buffer[64];
    const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, end);
  }

  std::optional<std::string> text_;
};

namespace internal {
struct ResultData;  // a pqxx::result
}  // namespace internal

// One row of a Result (a view: it shares the Result's data). Columns are numbered from 0. The
// typed accessors throw std::logic_error for a NULL (check is_null first) and
// std::invalid_argument for text that is not of the type; every accessor throws
// std::invalid_argument for a column out of range.
class Row {
 public:
  std::size_t size() const noexcept;  // columns
  bool is_null(std::size_t column) const;
  std::int64_t as_int64(std::size_t column) const;
  double as_double(std::size_t column) const;
  bool as_bool(std::size_t column) const;
  std::string as_text(std::size_t column) const;
  // A bytea column.
  std::vector<std::byte> as_bytes(std::size_t column) const;
  // The column's name, as the query named it.
  std::string_view column_name(std::size_t column) const;

 private:
  friend class Result;
  Row(std::shared_ptr<const internal::ResultData> data, std::size_t row)
      : data_(std::move(data)), row_(row) {}
  void require_column(std::size_t column) const;
  std::string_view value(std::size_t column) const;  // not NULL, column in range

  std::shared_ptr<const internal::ResultData> data_;
  std::size_t row_;
};

// The rows a statement returned, and how many it changed.
class Result {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Row;
    iterator() = default;
    Row operator*() const { return (*result_)[index_]; }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      iterator previous = *this;
      ++index_;
      return previous;
    }
    bool operator==(const iterator& other) const noexcept { return index_ == other.index_; }

   private:
    friend class Result;
    iterator(const Result* result, std::size_t index) : result_(result), index_(index) {}
    const Result* result_ = nullptr;
    std::size_t index_ = 0;
  };

  std::size_t size() const noexcept;  // rows
  bool empty() const noexcept { return size() == 0; }
  // Throws std::invalid_argument for a row out of range.
  Row operator[](std::size_t row) const;
  iterator begin() const { return iterator(this, 0); }
  iterator end() const { return iterator(this, size()); }
  // Rows inserted, updated or deleted by the statement.
  std::uint64_t affected_rows() const noexcept;

  // Results are made by Connection and Transaction.
  explicit Result(std::shared_ptr<const internal::ResultData> data) : data_(std::move(data)) {}

 private:
  std::shared_ptr<const internal::ResultData> data_;
};

enum class IsolationLevel { read_committed, repeatable_read, serializable };

// A transaction in progress: commit() or rollback(); destroyed without either, it rolls back.
// While it is open, its Connection runs nothing else. Move-only.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // Runs a statement ($1, $2, ... bound to `params`), or without params a script of
  // ';'-separated statements (returning the last one's result). Throws Error (after which the
  // transaction can only roll back).
  Result execute(std::string_view sql, std::initializer_list<Param> params = {});
  Result execute(std::string_view sql, std::span<const Param> params);
  // Throws Error when the commit fails (the transaction is then rolled back: a serialization
  // failure surfaces here as is_transaction_rollback()).
  void commit();
  void rollback();
  bool active() const noexcept { return impl_ != nullptr; }

 private:
  friend class Connection;
  struct Impl;
  explicit Transaction(std::unique_ptr<Impl> impl) noexcept;
  Impl& require_active(std::string_view what) const;

  std::unique_ptr<Impl> impl_;  // null once committed or rolled back
};

class Connection {
 public:
  // Connects now, with a libpq connection string ("host=... port=... dbname=... user=...") or
  // URI ("postgresql://..."). Throws Error when the server cannot be reached or refuses.
  explicit Connection(const std::string& connection_string);
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // As Transaction::execute, in a transaction of its own (autocommit: a script without params
  // runs as one implicit transaction). Throws Error, and std::logic_error while a Transaction of
  // this connection is open.
  Result execute(std::string_view sql, std::initializer_list<Param> params = {});
  Result execute(std::string_view sql, std::span<const Param> params);
  // Begins a transaction. Throws std::logic_error while another one is open.
  Transaction transaction(IsolationLevel isolation = IsolationLevel::read_committed);

  bool is_open() const noexcept;

 private:
  friend class Transaction;
  struct Impl;
  Impl& impl() const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::postgres
