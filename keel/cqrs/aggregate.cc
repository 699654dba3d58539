#include "keel/cqrs/aggregate.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <exception>

#include "keel/core/internal/log.h"
#include "keel/cqrs/internal/json.h"

namespace keel::cqrs {

void Aggregate::raise(std::string type, const boost::json::value& data) {
  apply(type, data);
  pending_.push_back(NewEvent{.type = std::move(type), .data = boost::json::serialize(data)});
}

std::optional<Snapshot> InMemorySnapshotStore::load(std::string_view stream) {
  std::lock_guard lock(mutex_);
  const auto it = snapshots_.find(stream);
  if (it == snapshots_.end()) return std::nullopt;
  return it->second;
}

void InMemorySnapshotStore::save(std::string_view stream, const Snapshot& snapshot) {
  std::lock_guard lock(mutex_);
  snapshots_.insert_or_assign(std::string(stream), snapshot);
}

struct Repository::Counters {
  std::atomic<std::uint64_t> loads{0};
  std::atomic<std::uint64_t> events_read{0};
  std::atomic<std::uint64_t> snapshots_read{0};
  std::atomic<std::uint64_t> snapshots_taken{0};
  std::atomic<std::uint64_t> snapshot_failures{0};
  std::atomic<std::uint64_t> saves{0};
};

Repository::Repository(EventStore& store, RepositoryOptions options)
    : store_(store), options_(options), counters_(std::make_shared<Counters>()) {
  if (options_.snapshot_every == 0) {
    throw std::invalid_argument("cqrs: RepositoryOptions::snapshot_every must be >= 1");
  }
}

void Repository::load(std::string_view stream, Aggregate& aggregate) {
  if (stream.empty()) throw std::invalid_argument("cqrs: Repository::load of an empty stream");
  if (!aggregate.stream_.empty()) {
    throw std::logic_error(fmt::format("cqrs: aggregate of '{}' loaded again", aggregate.stream_));
  }
  aggregate.stream_ = std::string(stream);
  if (options_.snapshots != nullptr) {
    if (const std::optional<Snapshot> snapshot = options_.snapshots->load(stream)) {
      aggregate.restore(internal::parse_json(snapshot->state));
      aggregate.loaded_version_ = snapshot->version;
      counters_->snapshots_read.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // Read in pages, so that a long stream is never copied whole.
  constexpr std::size_t kPage = 512;
  for (;;) {
    const std::vector<RecordedEvent> events =
        store_.read_stream(stream, aggregate.loaded_version_ + 1, kPage);
    for (const RecordedEvent& stored : events) {
      with_upcast(options_.upcasters, stored, [&](const RecordedEvent& event) {
        aggregate.apply(event.type, internal::parse_json(event.data));
      });
      aggregate.loaded_version_ = stored.version;
    }
    counters_->events_read.fetch_add(events.size(), std::memory_order_relaxed);
    if (events.size() < kPage) break;
  }
  counters_->loads.fetch_add(1, std::memory_order_relaxed);
}

AppendResult Repository::save(Aggregate& aggregate, const std::string& metadata) {
  if (aggregate.stream_.empty()) {
    throw std::logic_error("cqrs: Repository::save of an aggregate that was never loaded");
  }
  if (!metadata.empty()) {
    for (NewEvent& event : aggregate.pending_) event.metadata = metadata;
  }
  const std::uint64_t before = aggregate.loaded_version_;
  const AppendResult result =
      store_.append(aggregate.stream_, ExpectedVersion::exactly(before), aggregate.pending_);
  if (aggregate.pending_.empty()) return result;
  aggregate.loaded_version_ = result.version;
  aggregate.pending_.clear();
  counters_->saves.fetch_add(1, std::memory_order_relaxed);
  if (options_.snapshots != nullptr &&
      result.version / options_.snapshot_every > before / options_.snapshot_every) {
    take_snapshot(aggregate);
  }
  return result;
}

void Repository::take_snapshot(const Aggregate& aggregate) {
  try {
    const std::optional<boost::json::value> state = aggregate.snapshot();
    if (!state) return;
    options_.snapshots->save(aggregate.stream_, Snapshot{.version = aggregate.loaded_version_,
                                                         .state = boost::json::serialize(*state)});
    counters_->snapshots_taken.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    counters_->snapshot_failures.fetch_add(1, std::memory_order_relaxed);
    keel::internal::logger().warn("cqrs: snapshot of '{}' at version {} failed: {}",
                                  aggregate.stream_, aggregate.loaded_version_,
                                  keel::internal::describe(std::current_exception()));
  }
}

RepositoryMetrics Repository::metrics() const {
  return RepositoryMetrics{
      .loads = counters_->loads.load(std::memory_order_relaxed),
      .events_read = counters_->events_read.load(std::memory_order_relaxed),
      .snapshots_read = counters_->snapshots_read.load(std::memory_order_relaxed),
      .snapshots_taken = counters_->snapshots_taken.load(std::memory_order_relaxed),
      .snapshot_failures = counters_->snapshot_failures.load(std::memory_order_relaxed),
      .saves = counters_->saves.load(std::memory_order_relaxed),
  };
}

}  // namespace keel::cqrs
