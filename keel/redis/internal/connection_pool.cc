#include "keel/redis/internal/connection_pool.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>

#include "keel/core/errors.h"

namespace keel::redis::internal {
namespace {

timeval to_timeval(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

void validate(const ConnectionOptions& options) {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("redis ConnectionOptions: " + what);
  };
  if (options.host.empty()) fail("host must not be empty");
  if (options.port == 0) fail("port must be > 0");
  if (options.database < 0) fail(fmt::format("database must be >= 0, got {}", options.database));
  if (options.connect_timeout <= Duration::zero()) {
    fail(fmt::format("connect_timeout must be > 0, got {}", options.connect_timeout));
  }
  if (options.command_timeout <= Duration::zero()) {
    fail(fmt::format("command_timeout must be > 0, got {}", options.command_timeout));
  }
  if (options.pool_size == 0) fail("pool_size must be > 0");
}

// hiredis sends with write(2): on a connection the peer has reset, that raises SIGPIPE, whose
// default action ends the process. SIGPIPE is blocked on this thread for one exchange, and one
// that a failed exchange raised is taken, leaving the process' signal dispositions alone. Two
// system calls per exchange; the failure path takes two more.
class SigpipeBlock {
 public:
  SigpipeBlock() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  ~SigpipeBlock() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  // After a failed exchange. A SIGPIPE pending while the thread had it blocked before may be the
  // caller's: it is left alone.
  void take_raised() noexcept {
    if (sigismember(&previous_, SIGPIPE) == 1) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec no_wait{};
      sigtimedwait(&pipe_, nullptr, &no_wait);
    }
  }

 private:
  sigset_t pipe_{};
  sigset_t previous_{};
};

// Sends `commands` on `context` at once and reads their replies; empty when the exchange failed
// (context->err says why, errno is that of the failure).
std::vector<Reply> send(redisContext* context,
                        std::span<const std::span<const std::string_view>> commands) {
  SigpipeBlock no_sigpipe;
  auto failed = [&] {
    const int error_number = errno;
    no_sigpipe.take_raised();
    errno = error_number;
    return std::vector<Reply>();
  };
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& args : commands) {
    argv.clear();
    lengths.clear();
    for (const std::string_view arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    // Only buffers the command: redisGetReply writes the buffer out.
    if (redisAppendCommandArgv(context, static_cast<int>(args.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return failed();
    }
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(context, &reply) != REDIS_OK || reply == nullptr) return failed();
    replies.emplace_back(static_cast<redisReply*>(reply));
  }
  return replies;
}

}  // namespace

void ReplyDeleter::operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }

void ContextDeleter::operator()(redisContext* context) const noexcept { redisFree(context); }

std::string_view reply_text(const redisReply& reply) noexcept {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return {reply.str, reply.len};
    default:
      return {};
  }
}

bool is_error(const redisReply& reply) noexcept { return reply.type == REDIS_REPLY_ERROR; }

Context connect(const ConnectionOptions& options) {
  const std::string where = fmt::format("{}:{}", options.host, options.port);
  Context context(redisConnectWithTimeout(options.host.c_str(), options.port,
                                          to_timeval(options.connect_timeout)));
  if (context == nullptr) throw BackendError("redis", where + ": cannot allocate a connection");
  if (context->err != 0) {
    throw BackendError("redis", fmt::format("cannot connect to {}: {}", where, context->errstr));
  }
  if (redisSetTimeout(context.get(), to_timeval(options.command_timeout)) != REDIS_OK) {
    throw BackendError("redis", fmt::format("{}: cannot set the command timeout", where));
  }

  auto setup = [&](std::initializer_list<std::string_view> args) {
    const std::span<const std::string_view> one[] = {std::span(args.begin(), args.size())};
    const std::vector<Reply> replies = send(context.get(), one);
    if (replies.empty()) {
      throw BackendError("redis", fmt::format("{}: {}", where, context->errstr));
    }
    if (is_error(*replies.front())) {
      throw BackendError("redis", fmt::format("{}: {} failed: {}", where, *args.begin(),
                                              reply_text(*replies.front())));
    }
  };
  if (!options.password.empty()) {
    if (options.username.empty()) {
      setup({"AUTH", options.password});
    } else {
      setup({"AUTH", options.username, options.password});
    }
  }
  if (options.database != 0) setup({"SELECT", std::to_string(options.database)});
  return context;
}

struct ConnectionPool::Connection {
  Context context;
  bool reused = false;  // has served a command before: may have been closed while idle
};

// A connection taken from the pool; given back when healthy, closed otherwise.
class ConnectionPool::Lease {
 public:
  Lease(ConnectionPool& pool, std::unique_ptr<Connection> connection)
      : pool_(pool), connection_(std::move(connection)) {}
  Lease(Lease&&) = default;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() {
    if (connection_ == nullptr) return;
    if (connection_->context->err == 0) {
      connection_->reused = true;
      pool_.give_back(std::move(connection_));
    } else {
      pool_.close(std::move(connection_));
    }
  }
  Connection* operator->() const noexcept { return connection_.get(); }

 private:
  ConnectionPool& pool_;
  std::unique_ptr<Connection> connection_;
};

ConnectionPool::ConnectionPool(ConnectionOptions options) : options_(std::move(options)) {
  validate(options_);
}

ConnectionPool::~ConnectionPool() = default;

Reply ConnectionPool::command(std::span<const std::string_view> args) {
  const std::span<const std::string_view> one[] = {args};
  return std::move(exchange(one).front());
}

std::vector<Reply> ConnectionPool::pipeline(
    std::span<const std::vector<std::string_view>> commands) {
  if (commands.empty()) return {};
  const std::vector<std::span<const std::string_view>> spans(commands.begin(), commands.end());
  return exchange(spans);
}

std::vector<Reply> ConnectionPool::exchange(
    std::span<const std::span<const std::string_view>> commands) {
  for (int attempt = 1;; ++attempt) {
    Lease lease = acquire();
    std::vector<Reply> replies = send(lease->context.get(), commands);
    if (!replies.empty()) return replies;

    const int error_number = errno;
    failures_.fetch_add(1, std::memory_order_relaxed);
    const redisContext& context = *lease->context;
    const bool closed_by_server =
        context.err == REDIS_ERR_EOF ||
        (context.err == REDIS_ERR_IO && (error_number == ECONNRESET || error_number == EPIPE));
    const bool retry = closed_by_server && lease->reused && attempt == 1;
    std::string message = fmt::format("{}:{}: {}", options_.host, options_.port, context.errstr);
    if (closed_by_server) close_idle();
    if (!retry) throw BackendError("redis", message);
  }
}

ConnectionPool::Lease ConnectionPool::acquire() {
  {
    std::unique_lock lock(mutex_);
    slot_free_.wait(lock, [this] { return !idle_.empty() || open_ < options_.pool_size; });
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(connection));
    }
    ++open_;  // this slot is ours while we connect, outside the lock
  }
  try {
    return Lease(*this, open_connection());
  } catch (...) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    close(nullptr);
    throw;
  }
}

std::unique_ptr<ConnectionPool::Connection> ConnectionPool::open_connection() {
  auto connection = std::make_unique<Connection>();
  connection->context = connect(options_);
  return connection;
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  slot_free_.notify_one();
}

void ConnectionPool::close(std::unique_ptr<Connection> connection) {
  connection.reset();  // outside the lock: redisFree closes a socket
  {
    std::lock_guard lock(mutex_);
    --open_;
  }
  slot_free_.notify_one();
}

void ConnectionPool::close_idle() {
  std::vector<std::unique_ptr<Connection>> closing;
  {
    std::lock_guard lock(mutex_);
    closing.swap(idle_);
    open_ -= closing.size();
  }
  closing.clear();
  slot_free_.notify_all();
}

}  // namespace keel::redis::internal
