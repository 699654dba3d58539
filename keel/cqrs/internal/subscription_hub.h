// SubscriptionHub: subscribe_all() for every EventStore implementation, built on read_all().
//
// Each subscription keeps a cursor (the last position it was given). Delivering means reading
// the events after the cursor with read_all() (which copies them out under the store's lock,
// briefly) and calling the handler with each, no lock held, then moving the cursor. One thread
// at a time delivers to a subscription: a thread that finds it busy leaves a note ("pending")
// that the busy thread reads before it stops, so no append is missed and none is delivered
// twice. The thread that delivers is the one that subscribed (catch-up) or one that called
// notify() after committing an append; it keeps going until the subscription is caught up.
//
// Because delivery reads positions in order from the store (rather than passing along the
// events an append wrote), the order and exactly-once guarantees rest on read_all() never
// skipping a position, which every store guarantees.
//
// Thread safety: all members are safe to call from any number of threads; a handler may append
// (its own delivery is noted and done by the outer loop) or end its own subscription.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "keel/core/call_gate.h"
#include "keel/core/subscription.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/internal/append_rules.h"

namespace keel::cqrs::internal {

class SubscriptionHub {
 public:
  using ReadAll = std::function<std::vector<RecordedEvent>(std::uint64_t after_position,
                                                           std::size_t max_count)>;

  // `read_all` is the store's; it must stay callable for the hub's lifetime.
  explicit SubscriptionHub(ReadAll read_all);
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  // Registers the subscription and delivers the events already stored on the calling thread,
  // before it returns (appends committed meanwhile are delivered by this thread too). Throws
  // std::invalid_argument for an empty handler, and what the store's read throws (the
  // subscription is then ended).
  Subscription subscribe(std::uint64_t after_position, EventHandler handler);

  // New events were committed: delivers them to every subscription that is not being served.
  void notify();

  // EventStoreMetrics from the hub's counters and the store's `appends`.
  EventStoreMetrics metrics(const AppendCounters& appends) const;

 private:
  struct Entry;
  struct State;
  // Delivers until the subscription is caught up, unless another thread is delivering to it.
  void deliver(Entry& entry);
  // The delivering thread's loop (its turn already taken). Throws what read_all() throws.
  void serve(Entry& entry);
  // Clears `pending`; when there was none, ends this thread's turn and returns false.
  static bool take_pending(Entry& entry);
  // Reads and handles events until none is left; false when the subscription ended.
  bool catch_up(Entry& entry);
  // Returns false when the subscription ended (unsubscribed, or its handler threw).
  bool handle(Entry& entry, const RecordedEvent& event);

  std::shared_ptr<State> state_;
};

}  // namespace keel::cqrs::internal
