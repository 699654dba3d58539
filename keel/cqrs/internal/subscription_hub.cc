#include "keel/cqrs/internal/subscription_hub.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include "keel/core/internal/log.h"

namespace keel::cqrs::internal {
namespace {
// Events read per call of read_all() while delivering: bounds the copy held in memory.
constexpr std::size_t kDeliveryBatch = 256;
}  // namespace

struct SubscriptionHub::Entry {
  Entry(std::uint64_t after, EventHandler h) : handler(std::move(h)), cursor(after) {}
  const EventHandler handler;
  CallGate gate;
  std::mutex mu;
  bool delivering = false;  // GUARDED_BY(mu): a thread is delivering to this subscription
  bool pending = false;     // GUARDED_BY(mu): events were committed since it last read
  // The last position handed to the handler. Only the delivering thread touches it; the
  // hand-over of `delivering` under `mu` orders one deliverer's writes before the next's reads.
  std::uint64_t cursor;
};

struct SubscriptionHub::State {
  explicit State(ReadAll r) : read_all(std::move(r)) {}
  const ReadAll read_all;
  mutable std::mutex mu;
  std::vector<std::shared_ptr<Entry>> entries;  // GUARDED_BY(mu)
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failures{0};

  void remove(const std::shared_ptr<Entry>& entry) {
    std::lock_guard lock(mu);
    std::erase(entries, entry);
  }
};

SubscriptionHub::SubscriptionHub(ReadAll read_all)
    : state_(std::make_shared<State>(std::move(read_all))) {}

Subscription SubscriptionHub::subscribe(std::uint64_t after_position, EventHandler handler) {
  if (!handler) throw std::invalid_argument("cqrs: subscribe_all with an empty handler");
  auto entry = std::make_shared<Entry>(after_position, std::move(handler));
  // This thread delivers the catch-up: the entry is registered already being served, so an
  // append committed meanwhile on another thread only leaves a note (`pending`) for this loop,
  // and never replays the log inside that other thread's append.
  entry->delivering = true;
  entry->pending = true;
  {
    std::lock_guard lock(state_->mu);
    state_->entries.push_back(entry);
  }
  Subscription subscription([weak_state = std::weak_ptr<State>(state_), entry] {
    entry->gate.close();
    if (auto state = weak_state.lock()) state->remove(entry);
  });
  try {
    serve(*entry);
  } catch (...) {
    subscription.unsubscribe();  // the catch-up could not read the store: the caller hears it
    throw;
  }
  return subscription;
}

void SubscriptionHub::notify() {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard lock(state_->mu);
    entries = state_->entries;
  }
  for (const auto& entry : entries) deliver(*entry);
}

void SubscriptionHub::deliver(Entry& entry) {
  {
    std::lock_guard lock(entry.mu);
    entry.pending = true;
    if (entry.delivering) return;  // the thread delivering now will see `pending`
    entry.delivering = true;
  }
  try {
    serve(entry);
  } catch (...) {
    // read_all() failed (the engine is unreachable). The append that called notify() has
    // committed and must not fail for it: leave the events for the next notify().
    keel::internal::logger().warn("cqrs: reading events for a subscription failed ({})",
                                  keel::internal::describe(std::current_exception()));
    std::lock_guard lock(entry.mu);
    entry.pending = true;
    entry.delivering = false;
  }
}

void SubscriptionHub::serve(Entry& entry) {
  while (take_pending(entry)) {
    // A subscription that ended keeps `delivering` set: nobody delivers to it again.
    if (!catch_up(entry)) return;
  }
}

bool SubscriptionHub::take_pending(Entry& entry) {
  std::lock_guard lock(entry.mu);
  if (!entry.pending) {
    entry.delivering = false;
    return false;
  }
  entry.pending = false;
  return true;
}

bool SubscriptionHub::catch_up(Entry& entry) {
  for (;;) {
    const std::vector<RecordedEvent> events = state_->read_all(entry.cursor, kDeliveryBatch);
    for (const RecordedEvent& event : events) {
      if (!handle(entry, event)) return false;
    }
    if (events.size() < kDeliveryBatch) return true;
  }
}

bool SubscriptionHub::handle(Entry& entry, const RecordedEvent& event) {
  {
    const CallGate::Scope scope(entry.gate);
    if (!scope) return false;
    try {
      entry.handler(event);
      entry.cursor = event.position;
      state_->delivered.fetch_add(1, std::memory_order_relaxed);
      return true;
    } catch (...) {
      state_->failures.fetch_add(1, std::memory_order_relaxed);
      keel::internal::logger().error(
          "cqrs: a subscribe_all handler threw at position {} ({}); the subscription ends, "
          "resubscribe after position {} to resume",
          event.position, keel::internal::describe(std::current_exception()), entry.cursor);
    }
  }
  entry.gate.close();
  std::lock_guard lock(state_->mu);
  std::erase_if(state_->entries, [&](const auto& e) { return e.get() == &entry; });
  return false;
}

EventStoreMetrics SubscriptionHub::metrics(const AppendCounters& appends) const {
  std::size_t subscriptions = 0;
  {
    std::lock_guard lock(state_->mu);
    subscriptions = state_->entries.size();
  }
  return EventStoreMetrics{
      .appends = appends.appends.load(std::memory_order_relaxed),
      .events_appended = appends.events_appended.load(std::memory_order_relaxed),
      .idempotent_retries = appends.idempotent_retries.load(std::memory_order_relaxed),
      .conflicts = appends.conflicts.load(std::memory_order_relaxed),
      .events_delivered = state_->delivered.load(std::memory_order_relaxed),
      .handler_failures = state_->failures.load(std::memory_order_relaxed),
      .subscriptions = subscriptions,
  };
}

}  // namespace keel::cqrs::internal
