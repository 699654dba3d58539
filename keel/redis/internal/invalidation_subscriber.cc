#include "keel/redis/internal/invalidation_subscriber.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "keel/core/errors.h"
#include "keel/core/internal/log.h"
#include "keel/redis/internal/connection_pool.h"

namespace keel::redis::internal {
namespace {

int poll_timeout_ms(Duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, INT_MAX));
}

// Writes one command out (the socket is blocking, with the command timeout).
void send(redisContext* context, std::initializer_list<std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  if (redisAppendCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data()) !=
      REDIS_OK) {
    throw BackendError("redis", fmt::format("cannot send {}: {}", *args.begin(), context->errstr));
  }
  for (int done = 0; done == 0;) {
    if (redisBufferWrite(context, &done) != REDIS_OK) {
      throw BackendError("redis",
                         fmt::format("cannot send {}: {}", *args.begin(), context->errstr));
    }
  }
}

// The kind of a pub/sub reply ("subscribe", "message", "pong"), or empty.
std::string_view kind_of(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0) return {};
  return reply_text(*reply.element[0]);
}

}  // namespace

InvalidationSubscriber::InvalidationSubscriber(ConnectionOptions connection, std::string channel,
                                               Duration health_check_interval,
                                               BackoffPolicy reconnect, Callbacks callbacks,
                                               const Clock& clock)
    : connection_(std::move(connection)),
      channel_(std::move(channel)),
      health_check_interval_(health_check_interval),
      reconnect_(reconnect),
      callbacks_(std::move(callbacks)),
      failure_log_(clock) {
  if (health_check_interval_ <= Duration::zero()) {
    throw std::invalid_argument(fmt::format(
        "TwoTierCache: health_check_interval must be > 0, got {}", health_check_interval_));
  }
  reconnect_.validate();
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { run(); });
}

InvalidationSubscriber::~InvalidationSubscriber() {
  stopping_.store(true, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) < 0) {
    keel::internal::logger().error("InvalidationSubscriber: cannot wake its thread: {}",
                                   std::strerror(errno));
  }
  thread_.join();
  ::close(wake_fd_);
}

bool InvalidationSubscriber::wait_for_stop(Duration delay) const {
  pollfd wake{.fd = wake_fd_, .events = POLLIN, .revents = 0};
  while (::poll(&wake, 1, poll_timeout_ms(delay)) < 0 && errno == EINTR) {
  }
  return stopping_.load(std::memory_order_relaxed);
}

void InvalidationSubscriber::run() {
  // hiredis writes with write(2): a reset connection must not raise SIGPIPE. This thread is
  // ours, so SIGPIPE stays blocked on it for good.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  Backoff backoff(reconnect_);
  while (!stopping_.load(std::memory_order_relaxed)) {
    try {
      session(backoff);
    } catch (const std::exception& e) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      if (const std::uint64_t failures = failure_log_.record()) {
        keel::internal::logger().warn(
            "Redis subscription to '{}': {} failure(s), subscribing again; last: {}", channel_,
            failures, e.what());
      }
    }
    subscribed_.store(false, std::memory_order_release);
    const std::optional<Duration> delay = backoff.next();
    if (wait_for_stop(delay.value_or(reconnect_.max_delay))) break;
  }
}

void InvalidationSubscriber::session(Backoff& backoff) {
  const Context context = connect(connection_);
  redisEnableKeepAlive(context.get());
  send(context.get(), {"SUBSCRIBE", channel_});
  bool awaiting_pong = false;
  for (;;) {
    for (;;) {  // the replies already read
      void* raw = nullptr;
      if (redisGetReplyFromReader(context.get(), &raw) != REDIS_OK) {
        throw BackendError("redis", fmt::format("subscription: {}", context->errstr));
      }
      if (raw == nullptr) break;
      const Reply reply(static_cast<redisReply*>(raw));
      const std::string_view kind = kind_of(*reply);
      if (kind == "message" && reply->elements == 3) {
        callbacks_.on_message(reply_text(*reply->element[2]));
      } else if (kind == "subscribe") {
        callbacks_.on_subscribed();
        subscriptions_.fetch_add(1, std::memory_order_relaxed);
        subscribed_.store(true, std::memory_order_release);
        backoff.reset();
      } else if (kind == "pong") {
        awaiting_pong = false;
      } else {
        throw BackendError("redis", fmt::format("SUBSCRIBE {}: unexpected reply: {}", channel_,
                                                reply_text(*reply)));
      }
    }

    std::array<pollfd, 2> fds{pollfd{.fd = context->fd, .events = POLLIN, .revents = 0},
                              pollfd{.fd = wake_fd_, .events = POLLIN, .revents = 0}};
    const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms(health_check_interval_));
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[1].revents != 0 || stopping_.load(std::memory_order_relaxed)) return;
    if (ready == 0) {
      if (awaiting_pong) {
        throw BackendError("redis",
                           fmt::format("no answer to PING within {}", health_check_interval_));
      }
      send(context.get(), {"PING"});
      awaiting_pong = true;
      continue;
    }
    if (redisBufferRead(context.get()) != REDIS_OK) {
      throw BackendError("redis", fmt::format("subscription: {}", context->errstr));
    }
  }
}

}  // namespace keel::redis::internal
