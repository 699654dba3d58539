// keel::CallGate: the one implementation of the Subscription guarantee for a single callback.
//
// A caller brackets every call of the callback with enter()/leave() (or a CallGate::Scope);
// close() stops new calls and waits until no call is running on another thread. Calls further
// up the closing thread's own stack (a callback that unsubscribes itself) are not waited for:
// they cannot finish before close() returns. After close() returns, the callback is not running
// elsewhere and will not be called again.
//
// Thread safety: all members are safe to call from any number of threads.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace keel {

namespace internal {
// The gates the current thread is inside of (a stack: callbacks may nest).
std::vector<const void*>& listener_calls_on_this_thread() noexcept;
}  // namespace internal

class CallGate {
 public:
  CallGate() = default;
  CallGate(const CallGate&) = delete;
  CallGate& operator=(const CallGate&) = delete;

  // Admits a call: false once the gate is closed (do not call, do not leave()).
  bool enter() {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return false;
      ++in_flight_;
    }
    internal::listener_calls_on_this_thread().push_back(this);
    return true;
  }
  void leave() {
    auto& calls = internal::listener_calls_on_this_thread();
    if (auto it = std::find(calls.rbegin(), calls.rend(), this); it != calls.rend()) {
      calls.erase(std::next(it).base());
    }
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
    }
    idle_.notify_all();
  }
  // Idempotent.
  void close() {
    const auto& calls = internal::listener_calls_on_this_thread();
    const auto own_calls = std::count(calls.begin(), calls.end(), this);
    std::unique_lock lock(mutex_);
    closed_ = true;
    idle_.wait(lock, [&] { return in_flight_ == own_calls; });
  }
  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  // enter() on construction, leave() on destruction when admitted.
  class Scope {
   public:
    explicit Scope(CallGate& gate) : gate_(gate), admitted_(gate.enter()) {}
    ~Scope() {
      if (admitted_) gate_.leave();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    explicit operator bool() const noexcept { return admitted_; }

   private:
    CallGate& gate_;
    bool admitted_;
  };

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  long in_flight_ = 0;  // guarded by mutex_
  bool closed_ = false;  // guarded by mutex_
};

}  // namespace keel
