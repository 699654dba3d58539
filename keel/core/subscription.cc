#include "keel/core/subscription.h"

#include "keel/core/listener_set.h"

#include <memory>

namespace keel {

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    detach_ = std::exchange(other.detach_, nullptr);
  }
  return *this;
}

Subscription Subscription::all(std::vector<Subscription> parts) {
  auto held = std::make_shared<std::vector<Subscription>>(std::move(parts));
  return Subscription([held] {
    while (!held->empty()) held->pop_back();
  });
}

void Subscription::unsubscribe() noexcept {
  if (auto detach = std::exchange(detach_, nullptr)) detach();
}

namespace internal {
std::vector<const void*>& listener_calls_on_this_thread() noexcept {
  thread_local std::vector<const void*> calls;
  return calls;
}
}  // namespace internal

}  // namespace keel
