// keel::Subscription: the move-only handle every keel component returns for a listener or a
// subscription. Destroying it, or calling unsubscribe(), detaches the callback; once
// unsubscribe() returns the callback is never called again (it waits for a call in flight on
// another thread, and may be called from inside the callback itself).
//
// A Subscription may outlive the object it subscribed to: unsubscribing then does nothing.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace keel {

class Subscription {
 public:
  Subscription() = default;
  // `detach` is run once, by the first unsubscribe() (or the destructor).
  explicit Subscription(std::function<void()> detach) : detach_(std::move(detach)) {}
  Subscription(Subscription&& other) noexcept : detach_(std::exchange(other.detach_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { unsubscribe(); }

  // One handle for several: ending it ends each part, in reverse order.
  static Subscription all(std::vector<Subscription> parts);

  // Idempotent.
  void unsubscribe() noexcept;
  // True until unsubscribe() (or a move from this handle).
  bool active() const noexcept { return static_cast<bool>(detach_); }
  explicit operator bool() const noexcept { return active(); }

 private:
  std::function<void()> detach_;
};

}  // namespace keel
