#include "keel/postgres/connection.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <pqxx/pqxx>
#include <stdexcept>
#include <utility>

namespace keel::postgres {

namespace internal {
struct ResultData {
  pqxx::result result;
};
}  // namespace internal

namespace {

std::string_view trimmed(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  return message;
}

Error error(std::string sqlstate, const std::exception& e, std::string_view sql) {
  if (sql.empty()) return Error(std::move(sqlstate), std::string(trimmed(e.what())));
  return Error(std::move(sqlstate), fmt::format("{} in \"{}\"", trimmed(e.what()), sql));
}

// Runs `work`, turning libpqxx's failures into Error (SQLSTATE kept, or the one of the class
// libpqxx reported). libpqxx's usage errors are std::logic_errors and pass through.
template <class Work>
auto translated(std::string_view sql, Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const pqxx::sql_error& e) {
    throw error(e.sqlstate(), e, sql);
  } catch (const pqxx::broken_connection& e) {
    throw error("08006", e, sql);  // connection_failure
  } catch (const pqxx::in_doubt_error& e) {
    throw error("08007", e, sql);  // transaction_resolution_unknown
  } catch (const pqxx::serialization_failure& e) {
    throw error("40001", e, sql);
  } catch (const pqxx::deadlock_detected& e) {
    throw error("40P01", e, sql);
  } catch (const pqxx::statement_completion_unknown& e) {
    throw error("40003", e, sql);
  } catch (const pqxx::transaction_rollback& e) {
    throw error("40000", e, sql);
  } catch (const pqxx::failure& e) {
    throw error("", e, sql);
  }
}

Result run(pqxx::transaction_base& tx, std::string_view sql, std::span<const Param> params) {
  std::vector<const char*> values;  // nullptr: NULL
  values.reserve(params.size());
  for (const Param& param : params) {
    values.push_back(param.text() ? param.text()->c_str() : nullptr);
  }
  return translated(sql, [&] {
    // Without parameters, the simple query protocol: `sql` may be a script of statements.
    pqxx::result result =
        params.empty()
            ? tx.exec(std::string(sql))
            : tx.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(values));
    return Result(std::make_shared<const internal::ResultData>(std::move(result)));
  });
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// Param

Param::Param(std::span<const std::byte> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "\\x";
  text.reserve(2 + 2 * bytes.size());
  for (const std::byte b : bytes) {
    const auto value = std::to_integer<unsigned>(b);
    text += kHex[value >> 4];
    text += kHex[value & 0xf];
  }
  text_ = std::move(text);
}

// Row and Result

std::size_t Row::size() const noexcept { return data_->result.columns(); }

void Row::require_column(std::size_t column) const {
  if (column >= size()) {
    throw std::invalid_argument(
        fmt::format("postgres: column index {} is out of range (the row has {})", column, size()));
  }
}

bool Row::is_null(std::size_t column) const {
  require_column(column);
  return data_
      ->result[static_cast<pqxx::result::size_type>(row_)]
              [static_cast<pqxx::row::size_type>(column)]
      .is_null();
}

std::string_view Row::value(std::size_t column) const {
  require_column(column);
  const pqxx::field field = data_->result[static_cast<pqxx::result::size_type>(row_)]
                                         [static_cast<pqxx::row::size_type>(column)];
  if (field.is_null()) {
    throw std::logic_error(
        fmt::format("postgres: column {} ({}) is NULL", column, column_name(column)));
  }
  return std::string_view(field.c_str(), field.size());
}

std::string_view Row::column_name(std::size_t column) const {
  require_column(column);
  return data_->result.column_name(static_cast<pqxx::row::size_type>(column));
}

std::int64_t Row::as_int64(std::size_t column) const {
  const std::string_view text = value(column);
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument(
        fmt::format("postgres: column {} ({}) is not a 64-bit integer: '{}'", column,
                    column_name(column), text));
  }
  return number;
}

double Row::as_double(std::size_t column) const {
  const std::string_view text = value(column);
  // PostgreSQL writes infinities and NaN as words from_chars does not take.
  if (text == "Infinity") return std::numeric_limits<double>::infinity();
  if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  double number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument(fmt::format("postgres: column {} ({}) is not a number: '{}'",
                                            column, column_name(column), text));
  }
  return number;
}

bool Row::as_bool(std::size_t column) const {
  const std::string_view text = value(column);
  if (text == "t") return true;
  if (text == "f") return false;
  throw std::invalid_argument(fmt::format("postgres: column {} ({}) is not a boolean: '{}'", column,
                                          column_name(column), text));
}

std::string Row::as_text(std::size_t column) const { return std::string(value(column)); }

std::vector<std::byte> Row::as_bytes(std::size_t column) const {
  const std::string_view text = value(column);
  auto invalid = [&] {
    return std::invalid_argument(fmt::format("postgres: column {} ({}) is not bytea in hex format",
                                             column, column_name(column)));
  };
  if (!text.starts_with("\\x") || text.size() % 2 != 0) throw invalid();
  std::vector<std::byte> bytes;
  bytes.reserve(text.size() / 2 - 1);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int high = hex_digit(text[i]);
    const int low = hex_digit(text[i + 1]);
    if (high < 0 || low < 0) throw invalid();
    bytes.push_back(static_cast<std::byte>(high * 16 + low));
  }
  return bytes;
}

std::size_t Result::size() const noexcept { return data_->result.size(); }

Row Result::operator[](std::size_t row) const {
  if (row >= size()) {
    throw std::invalid_argument(
        fmt::format("postgres: row index {} is out of range (the result has {})", row, size()));
  }
  return Row(data_, row);
}

std::uint64_t Result::affected_rows() const noexcept { return data_->result.affected_rows(); }

// Connection and Transaction

struct Connection::Impl {
  explicit Impl(std::string options)
      : connection_string(std::move(options)),
        connection(std::make_unique<pqxx::connection>(connection_string)) {}

  // The connection, opened again if it was lost. REQUIRES: no transaction open.
  // The old connection is replaced only once a new one is open: when the server is still down,
  // the attempt throws and leaves the closed one in place, so the next call tries again (it used
  // to leave a null pointer that the next call dereferenced).
  pqxx::connection& open() {
    if (!connection->is_open()) {
      connection =
          translated("", [&] { return std::make_unique<pqxx::connection>(connection_string); });
    }
    return *connection;
  }

  const std::string connection_string;
  std::unique_ptr<pqxx::connection> connection;
  bool in_transaction = false;
};

struct Transaction::Impl {
  Impl(Connection::Impl& c, std::unique_ptr<pqxx::dbtransaction> t)
      : connection(c), tx(std::move(t)) {}
  ~Impl() { connection.in_transaction = false; }  // pqxx rolls back a transaction not committed
  Connection::Impl& connection;
  std::unique_ptr<pqxx::dbtransaction> tx;
};

Transaction::Transaction(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Transaction::Transaction(Transaction&& other) noexcept = default;

Transaction::~Transaction() = default;

Transaction::Impl& Transaction::require_active(std::string_view what) const {
  if (impl_ == nullptr) {
    throw std::logic_error(fmt::format("postgres: {} on a transaction that has ended", what));
  }
  return *impl_;
}

Result Transaction::execute(std::string_view sql, std::initializer_list<Param> params) {
  return execute(sql, std::span<const Param>(params.begin(), params.size()));
}

Result Transaction::execute(std::string_view sql, std::span<const Param> params) {
  return run(*require_active("execute()").tx, sql, params);
}

void Transaction::commit() {
  require_active("commit()");
  const std::unique_ptr<Impl> impl = std::move(impl_);  // ended, whatever the outcome
  translated("COMMIT", [&] { impl->tx->commit(); });
}

void Transaction::rollback() {
  require_active("rollback()");
  const std::unique_ptr<Impl> impl = std::move(impl_);
  translated("ROLLBACK", [&] { impl->tx->abort(); });
}

Connection::Connection(const std::string& connection_string) {
  impl_ = translated("", [&] { return std::make_unique<Impl>(connection_string); });
}

Connection::Connection(Connection&& other) noexcept = default;
Connection& Connection::operator=(Connection&& other) noexcept = default;
Connection::~Connection() = default;

Connection::Impl& Connection::impl() const {
  if (impl_ == nullptr) throw std::logic_error("postgres: use of a moved-from Connection");
  return *impl_;
}

Result Connection::execute(std::string_view sql, std::initializer_list<Param> params) {
  return execute(sql, std::span<const Param>(params.begin(), params.size()));
}

Result Connection::execute(std::string_view sql, std::span<const Param> params) {
  Impl& connection = impl();
  if (connection.in_transaction) {
    throw std::logic_error(fmt::format(
        "postgres: Connection::execute(\"{}\") while a Transaction is open on it", sql));
  }
  pqxx::connection& open = connection.open();
  auto tx = translated(sql, [&] { return std::make_unique<pqxx::nontransaction>(open); });
  return run(*tx, sql, params);
}

Transaction Connection::transaction(IsolationLevel isolation) {
  Impl& connection = impl();
  if (connection.in_transaction) {
    throw std::logic_error("postgres: transaction() while another Transaction is open");
  }
  pqxx::connection& open = connection.open();
  auto begin = [&]() -> std::unique_ptr<pqxx::dbtransaction> {
    switch (isolation) {
      case IsolationLevel::read_committed:
        return std::make_unique<pqxx::transaction<pqxx::read_committed>>(open);
      case IsolationLevel::repeatable_read:
        return std::make_unique<pqxx::transaction<pqxx::repeatable_read>>(open);
      case IsolationLevel::serializable:
        return std::make_unique<pqxx::transaction<pqxx::serializable>>(open);
    }
    throw std::invalid_argument("postgres: unknown IsolationLevel");
  };
  auto tx = translated("BEGIN", begin);
  connection.in_transaction = true;
  return Transaction(std::make_unique<Transaction::Impl>(connection, std::move(tx)));
}

bool Connection::is_open() const noexcept {
  return impl_ != nullptr && impl_->connection->is_open();
}

}  // namespace keel::postgres
