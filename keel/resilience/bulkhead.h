// keel::resilience::Bulkhead: at most N calls run at once, so that one slow dependency cannot
// take every thread of the process with it.
//
//   Bulkhead bulkhead({.name = "payments", .max_concurrent_calls = 20});
//   Receipt receipt = bulkhead.call(charge, order);   // throws BulkheadFull when 20 are running
//
// A call that finds every slot taken waits up to max_wait for one, then throws BulkheadFull
// without running. Waiters are not served in arrival order, and a new call may take a slot
// before a waiter that is woken for it.
//
// The wait is measured on the injected Clock: the waiter sleeps on a condition variable in real
// time slices of at most kWaitSlice (a release wakes it at once) and after each wake checks for
// a free slot, then for clock.now() reaching its deadline (the call's start + max_wait). With the
// default SteadyClock it waits max_wait of real time (overshooting by at most 1 ms); with a
// ManualClock it times out within one slice after a test advances the clock past the deadline.
//
// Thread safety: every member is safe to call from any number of threads. Admission and release
// take one mutex, held only to count.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/subscription.h"

namespace keel::resilience {

struct BulkheadConfig {
  // Names the bulkhead in exceptions, logs and metrics. Default: "default".
  std::string name = "default";
  // Calls allowed to run at once. REQUIRES: >= 1. Default: 10.
  int max_concurrent_calls = 10;
  // How long a call waits for a slot before it is rejected; 0 rejects at once.
  // REQUIRES: >= 0. Default: 0.
  Duration max_wait = Duration::zero();

  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

// Thrown by call() instead of calling, when every slot stayed taken for max_wait.
class BulkheadFull : public std::runtime_error {
 public:
  explicit BulkheadFull(std::string bulkhead);
  const std::string& bulkhead() const noexcept { return bulkhead_; }

 private:
  std::string bulkhead_;
};

// Counts since construction, and the load now.
struct BulkheadMetrics {
  std::uint64_t admitted = 0;
  std::uint64_t rejected = 0;
  std::int64_t in_flight = 0;       // calls holding a slot now
  std::int64_t peak_in_flight = 0;  // the most that ever held a slot at once
  std::int64_t waiting = 0;         // calls waiting for a slot now
  std::int64_t max_concurrent_calls = 0;
};

class Bulkhead {
 public:
  // How long a waiter sleeps at most before it reads the clock again.
  static constexpr Duration kWaitSlice = std::chrono::milliseconds(10);

  // Throws std::invalid_argument for an invalid config. `clock` must outlive the bulkhead.
  explicit Bulkhead(BulkheadConfig config = {}, const Clock& clock = default_clock());
  Bulkhead(const Bulkhead&) = delete;
  Bulkhead& operator=(const Bulkhead&) = delete;

  // Runs f(args...) in a slot and returns what it returns, or rethrows what it throws; the slot
  // is released either way. Throws BulkheadFull without calling f when no slot is free within
  // max_wait.
  template <class F, class... Args>
  std::invoke_result_t<F&&, Args&&...> call(F&& f, Args&&... args);

  // The asynchronous protocol: takes a slot, waiting up to max_wait for one; false (counted as
  // rejected) if none came free. Each granted permission must be released exactly once.
  bool try_acquire_permission();
  // Gives back a slot taken by try_acquire_permission(). Throws std::logic_error when no slot
  // is taken.
  void release_permission();

  BulkheadMetrics metrics() const;
  const std::string& name() const noexcept { return config_.name; }
  const BulkheadConfig& config() const noexcept { return config_; }

  // Exposes the bulkhead until the Subscription ends (the bulkhead must outlive it):
  //   keel_bulkhead_calls_total{bulkhead,outcome="admitted"|"rejected"},
  //   keel_bulkhead_in_flight{bulkhead}, keel_bulkhead_waiting{bulkhead},
  //   keel_bulkhead_max_concurrent_calls{bulkhead}.
  Subscription register_metrics(MetricsRegistry& registry) const;

 private:
  // REQUIRES: mu_ held. Takes a slot if one is free.
  bool take_slot_locked();
  bool wait_for_slot(std::unique_lock<std::mutex>& lock);

  const BulkheadConfig config_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable slot_freed_;
  std::int64_t in_flight_ = 0;       // GUARDED_BY(mu_)
  std::int64_t peak_in_flight_ = 0;  // GUARDED_BY(mu_)
  std::int64_t waiting_ = 0;         // GUARDED_BY(mu_)
  std::uint64_t admitted_ = 0;       // GUARDED_BY(mu_)
  std::uint64_t rejected_ = 0;       // GUARDED_BY(mu_)
};

template <class F, class... Args>
std::invoke_result_t<F&&, Args&&...> Bulkhead::call(F&& f, Args&&... args) {
  if (!try_acquire_permission()) throw BulkheadFull(config_.name);
  struct Slot {
    Bulkhead& bulkhead;
    ~Slot() { bulkhead.release_permission(); }
  } slot{*this};
  return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
}

}  // namespace keel::resilience
