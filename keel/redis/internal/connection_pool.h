// The blocking hiredis connection pool behind keel's Redis adapters (not part of the public API).
//
// A command takes an idle connection (or opens one while fewer than pool_size are open, or waits
// for one to come back), sends, reads the reply and returns the connection. A connection whose
// exchange failed is closed. When the server had closed a connection while it sat idle (a
// restart, a failover, an idle timeout), the other idle connections are closed too, since they
// are most likely dead as well, and the command is sent again, once, on a fresh connection: it
// never reached the server.
//
// Thread safety: all members are safe to call from any number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "keel/redis/connection_options.h"

struct redisContext;
struct redisReply;

namespace keel::redis::internal {

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept;
};
// Never null when returned by ConnectionPool::command.
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* context) const noexcept;
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// The text of a string, status or error reply; empty for other types.
std::string_view reply_text(const redisReply& reply) noexcept;
bool is_error(const redisReply& reply) noexcept;

// Opens a blocking connection with options' timeouts, sends AUTH and SELECT as configured.
// Throws BackendError naming the server when any of it fails.
Context connect(const ConnectionOptions& options);

class ConnectionPool {
 public:
  // Throws std::invalid_argument for invalid options. Does not connect.
  explicit ConnectionPool(ConnectionOptions options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Sends one command and returns its reply, which may be an error reply (is_error). Throws
  // keel::BackendError when no connection can be opened or the exchange fails (I/O error,
  // timeout).
  Reply command(std::span<const std::string_view> args);
  // Sends the commands at once and reads their replies, in order: one round trip (pipelining).
  // Not atomic: other clients' commands may run between them. Failures and the one resend are
  // as for command(), for the whole pipeline.
  std::vector<Reply> pipeline(std::span<const std::vector<std::string_view>> commands);

  // Failed connects and exchanges so far, including the ones retried successfully.
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

  const ConnectionOptions& options() const noexcept { return options_; }

 private:
  struct Connection;
  class Lease;

  std::vector<Reply> exchange(std::span<const std::span<const std::string_view>> commands);
  Lease acquire();
  std::unique_ptr<Connection> open_connection();
  void give_back(std::unique_ptr<Connection> connection);  // healthy: back to idle
  void close(std::unique_ptr<Connection> connection);      // broken: frees its slot
  void close_idle();

  const ConnectionOptions options_;
  std::atomic<std::uint64_t> failures_{0};
  std::mutex mutex_;
  std::condition_variable slot_free_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mutex_
  std::size_t open_ = 0;  // idle + in use + being opened; guarded by mutex_
};

}  // namespace keel::redis::internal
