// The rules of EventStore::append() that do not depend on where events are kept, in one place
// for every implementation (InMemoryEventStore, SqliteEventStore, PostgresEventStore): input
// validation, the expected-version check, recognising an idempotent retry, and event ids.
//
// An implementation's append() runs, inside its lock or transaction:
//   validate_append(stream, events);                      // before taking any lock
//   current = <the stream's version>;
//   found = <stored events whose id is one of explicit_ids(events)>;
//   if (auto original = decide_append(stream, expected, events, found, current, counters)) {
//     return *original;                                   // a retry: nothing to write
//   }
//   <write events at versions current+1.., ids from id_or_new()>; counters.wrote(n);
//
// Thread safety: pure functions (new_event_id() uses a per-thread generator).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/cqrs/event_store.h"

namespace keel::cqrs::internal {

// Throws std::invalid_argument (or DuplicateEventId for an id given twice in the batch) for
// input that no store accepts; see EventStore::append().
void validate_append(std::string_view stream, std::span<const NewEvent> events);

// The ids the caller gave, in batch order.
std::vector<std::string> explicit_ids(std::span<const NewEvent> events);

// The append side of EventStoreMetrics, shared by the implementations.
struct AppendCounters {
  std::atomic<std::uint64_t> appends{0};
  std::atomic<std::uint64_t> events_appended{0};
  std::atomic<std::uint64_t> idempotent_retries{0};
  std::atomic<std::uint64_t> conflicts{0};

  void wrote(std::size_t events) noexcept {
    appends.fetch_add(1, std::memory_order_relaxed);
    events_appended.fetch_add(events, std::memory_order_relaxed);
  }
};

// Decides an append once the stream's version (`current`) is known, under the store's lock.
// `found` holds the stored events whose id is among explicit_ids(events), in any order.
// - Returns the original AppendResult when the batch repeats stored events exactly (same ids,
//   same order, same stream, consecutive versions, same type, data and metadata) at versions
//   `expected` accepts: an idempotent retry, nothing to write.
// - Returns nullopt when the batch is new and `expected` accepts `current`: write it.
// - Throws WrongExpectedVersion (with `current`) otherwise, and DuplicateEventId when an id names
//   another event or the batch mixes stored and new events.
// Counts retries and conflicts in `counters`.
std::optional<AppendResult> decide_append(std::string_view stream, ExpectedVersion expected,
                                          std::span<const NewEvent> events,
                                          std::span<const RecordedEvent> found,
                                          std::uint64_t current, AppendCounters& counters);

// A random (version 4) UUID in its 36-character text form. The generator is per thread and
// reseeded in a forked child.
std::string new_event_id();

// The event's id, or a new one.
std::string id_or_new(const NewEvent& event);

}  // namespace keel::cqrs::internal
