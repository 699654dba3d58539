// InvalidationSubscriber: a background thread that holds a SUBSCRIBE to one channel on a
// connection of its own and hands every message to a callback (not part of the public API;
// TwoTierCache's receiving half).
//
// The connection is checked with PING when it has been quiet for health_check_interval and is
// taken for dead when the answer does not come within as long again (a server gone without
// closing its sockets). A lost or failed connection is opened again after a backoff delay, for
// as long as the subscriber lives. Messages published while it was not subscribed are lost:
// on_subscribed runs at every (re)subscription so that the owner can drop what those messages
// would have invalidated.
//
// Thread safety: the accessors are safe to call from any thread. The callbacks run on the
// subscriber's thread, one at a time; one that throws ends the connection (counted, logged),
// as if it had been lost, so that on_subscribed runs again.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "keel/core/backoff.h"
#include "keel/core/clock.h"
#include "keel/redis/connection_options.h"
#include "keel/redis/internal/failure_log.h"

namespace keel::redis::internal {

class InvalidationSubscriber {
 public:
  struct Callbacks {
    // The subscription is in place (again): messages published from now on will arrive.
    std::function<void()> on_subscribed;
    std::function<void(std::string_view message)> on_message;
  };

  // Starts the thread, which connects at once. `clock` paces the failure warnings; it must
  // outlive the subscriber. REQUIRES: health_check_interval > 0, reconnect valid.
  InvalidationSubscriber(ConnectionOptions connection, std::string channel,
                         Duration health_check_interval, BackoffPolicy reconnect,
                         Callbacks callbacks, const Clock& clock);
  // Stops the thread and waits for it: at once while it waits for messages or to reconnect (it
  // polls an eventfd too), up to connect_timeout while it is connecting.
  ~InvalidationSubscriber();
  InvalidationSubscriber(const InvalidationSubscriber&) = delete;
  InvalidationSubscriber& operator=(const InvalidationSubscriber&) = delete;

  // Whether the SUBSCRIBE is confirmed and the connection has not been found lost since.
  bool subscribed() const noexcept { return subscribed_.load(std::memory_order_acquire); }
  // Confirmed SUBSCRIBEs so far (the first, then one per reconnection).
  std::uint64_t subscriptions() const noexcept {
    return subscriptions_.load(std::memory_order_relaxed);
  }
  // Connections that failed to open or subscribe, were lost, or whose callback threw.
  std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }

 private:
  void run();
  void session(Backoff& backoff);  // one connection, until it fails (throws) or stop is asked
  bool wait_for_stop(Duration delay) const;  // true when stop was asked

  const ConnectionOptions connection_;
  const std::string channel_;
  const Duration health_check_interval_;
  const BackoffPolicy reconnect_;
  const Callbacks callbacks_;
  FailureLog failure_log_;
  int wake_fd_ = -1;  // an eventfd, written to stop the thread
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<std::uint64_t> subscriptions_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace keel::redis::internal
