// keel::ListenerSet: the thread-safe list of callbacks behind every `on_...` / `subscribe`
// method in keel. add() returns a keel::Subscription; notify() calls each active listener.
//
// Guarantees (the Subscription contract): after unsubscribe() returns, the callback is not
// running on another thread and is never called again; a callback may unsubscribe itself (or
// another listener) from inside a notify(). Listeners run in the order they were added, on the
// notifying thread, concurrently if several threads notify at once.
//
// Complexity: notify() copies the list of listeners (one shared_ptr each) and takes one
// uncontended mutex per listener; add() and unsubscribe are O(listeners).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "keel/core/call_gate.h"
#include "keel/core/subscription.h"

namespace keel {

template <class... Args>
class ListenerSet {
 public:
  using Callback = std::function<void(Args...)>;

  ListenerSet() = default;
  ListenerSet(const ListenerSet&) = delete;
  ListenerSet& operator=(const ListenerSet&) = delete;

  // Adds `callback` (must not be empty) and returns the handle that removes it.
  Subscription add(Callback callback);

  // Calls every active listener with `args`. A listener that throws does not stop the others;
  // returns the exceptions thrown, in order, for the caller to count and log.
  std::vector<std::exception_ptr> notify(const Args&... args) const;

  std::size_t size() const;
  bool empty() const { return size() == 0; }

 private:
  struct Entry {
    explicit Entry(Callback c) : callback(std::move(c)) {}
    const Callback callback;
    CallGate gate;
  };
  struct State {
    mutable std::mutex mu;
    std::vector<std::shared_ptr<Entry>> entries;  // GUARDED_BY(mu)
  };
  static void detach(const std::weak_ptr<State>& state, const std::shared_ptr<Entry>& entry);

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

template <class... Args>
Subscription ListenerSet<Args...>::add(Callback callback) {
  if (!callback) throw std::invalid_argument("ListenerSet::add: empty callback");
  auto entry = std::make_shared<Entry>(std::move(callback));
  {
    std::lock_guard lock(state_->mu);
    state_->entries.push_back(entry);
  }
  std::weak_ptr<State> weak_state = state_;
  return Subscription([weak_state, entry] { detach(weak_state, entry); });
}

template <class... Args>
std::vector<std::exception_ptr> ListenerSet<Args...>::notify(const Args&... args) const {
  std::vector<std::shared_ptr<Entry>> snapshot;
  {
    std::lock_guard lock(state_->mu);
    snapshot = state_->entries;
  }
  std::vector<std::exception_ptr> errors;
  for (const auto& entry : snapshot) {
    const CallGate::Scope scope(entry->gate);
    if (!scope) continue;
    try {
      entry->callback(args...);
    } catch (...) {
      errors.push_back(std::current_exception());
    }
  }
  return errors;
}

template <class... Args>
std::size_t ListenerSet<Args...>::size() const {
  std::lock_guard lock(state_->mu);
  return state_->entries.size();
}

template <class... Args>
void ListenerSet<Args...>::detach(const std::weak_ptr<State>& weak_state,
                                  const std::shared_ptr<Entry>& entry) {
  entry->gate.close();
  if (auto state = weak_state.lock()) {
    std::lock_guard lock(state->mu);
    std::erase(state->entries, entry);
  }
}

}  // namespace keel
