#include "keel/cqrs/event_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "keel/core/encoding.h"
#include "keel/cqrs/internal/append_rules.h"
#include "keel/cqrs/internal/subscription_hub.h"

namespace keel::cqrs {

bool ExpectedVersion::accepts(std::uint64_t current) const noexcept {
  switch (kind_) {
    case Kind::any:
      return true;
    case Kind::no_stream:
      return current == 0;
    case Kind::stream_exists:
      return current > 0;
    case Kind::exactly:
      return current == version_;
  }
  return false;
}

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::any:
      return "any";
    case Kind::no_stream:
      return "no_stream";
    case Kind::stream_exists:
      return "stream_exists";
    case Kind::exactly:
      return fmt::format("exactly({})", version_);
  }
  return "?";
}

WrongExpectedVersion::WrongExpectedVersion(std::string stream, ExpectedVersion expected,
                                           std::uint64_t actual)
    : std::runtime_error(fmt::format("cqrs: stream {} is at version {}, expected {}",
                                     quote_for_message(stream), actual, expected.to_string())),
      stream_(std::move(stream)),
      expected_(expected),
      actual_(actual) {}

DuplicateEventId::DuplicateEventId(std::string id, const std::string& why)
    : std::invalid_argument(fmt::format("cqrs: event id {} {}", quote_for_message(id), why)),
      id_(std::move(id)) {}

Subscription register_event_store_metrics(MetricsRegistry& registry, std::string_view name,
                                          std::function<EventStoreMetrics()> read) {
  if (!read) throw std::invalid_argument("cqrs: register_event_store_metrics without a reader");
  const std::string store(name);
  std::vector<Subscription> parts;
  const auto series = [&](std::string_view metric, std::string_view help, Labels labels,
                          std::uint64_t EventStoreMetrics::*field) {
    labels.emplace("store", store);
    parts.push_back(registry.counter_fn(
        metric, help, labels, [read, field] { return static_cast<double>(read().*field); }));
  };
  series("keel_cqrs_events_total", "Events appended and delivered to subscriptions",
         {{"event", "appended"}}, &EventStoreMetrics::events_appended);
  series("keel_cqrs_events_total", "Events appended and delivered to subscriptions",
         {{"event", "delivered"}}, &EventStoreMetrics::events_delivered);
  series("keel_cqrs_appends_total", "append() calls by outcome", {{"outcome", "written"}},
         &EventStoreMetrics::appends);
  series("keel_cqrs_appends_total", "append() calls by outcome", {{"outcome", "idempotent_retry"}},
         &EventStoreMetrics::idempotent_retries);
  series("keel_cqrs_appends_total", "append() calls by outcome", {{"outcome", "conflict"}},
         &EventStoreMetrics::conflicts);
  series("keel_cqrs_handler_failures_total",
         "subscribe_all handlers that threw, each ending its subscription", {},
         &EventStoreMetrics::handler_failures);
  parts.push_back(registry.gauge_fn("keel_cqrs_subscriptions", "Active subscribe_all subscriptions",
                                    {{"store", store}},
                                    [read] { return static_cast<double>(read().subscriptions); }));
  return Subscription::all(std::move(parts));
}

// InMemoryEventStore

namespace {
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};
template <class Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// Room for `more` elements; doubles the capacity when it must grow (reserve(size + more) alone
// would reallocate on every append: quadratic).
template <class T>
void reserve_more(std::vector<T>& v, std::size_t more) {
  if (v.capacity() - v.size() < more) v.reserve(std::max(v.capacity() * 2, v.size() + more));
}
}  // namespace

struct InMemoryEventStore::Impl {
  explicit Impl(const Clock& c) : clock(c) {}

  std::vector<RecordedEvent> read_all(std::uint64_t after_position, std::size_t max_count) const {
    std::shared_lock lock(mu);
    std::vector<RecordedEvent> events;
    const std::size_t first =
        static_cast<std::size_t>(std::min<std::uint64_t>(after_position, log.size()));
    const std::size_t count = std::min(max_count, log.size() - first);
    events.reserve(count);
    const auto begin = log.begin() + static_cast<std::ptrdiff_t>(first);
    events.assign(begin, begin + static_cast<std::ptrdiff_t>(count));
    return events;
  }

  // REQUIRES: mu held.
  std::uint64_t version_of(std::string_view stream) const {
    const auto it = streams.find(stream);
    return it == streams.end() ? 0 : it->second.size();
  }

  // REQUIRES: mu held.
  std::vector<RecordedEvent> stored_with_ids(std::span<const NewEvent> events) const {
    std::vector<RecordedEvent> found;
    for (const std::string& id : internal::explicit_ids(events)) {
      if (const auto it = by_id.find(id); it != by_id.end()) found.push_back(log[it->second]);
    }
    return found;
  }

  const Clock& clock;
  mutable std::shared_mutex mu;
  std::vector<RecordedEvent> log;               // GUARDED_BY(mu); log[p - 1] has position p
  StringMap<std::vector<std::size_t>> streams;  // GUARDED_BY(mu); indexes into log by version
  StringMap<std::size_t> by_id;                 // GUARDED_BY(mu); index into log
  internal::AppendCounters counters;
  internal::SubscriptionHub hub{
      [this](std::uint64_t after, std::size_t max) { return read_all(after, max); }};
};

InMemoryEventStore::InMemoryEventStore(const Clock& clock) : impl_(std::make_unique<Impl>(clock)) {}

InMemoryEventStore::~InMemoryEventStore() = default;

AppendResult InMemoryEventStore::append(std::string_view stream, ExpectedVersion expected,
                                        std::span<const NewEvent> events) {
  internal::validate_append(stream, events);
  AppendResult result;
  {
    std::unique_lock lock(impl_->mu);
    const std::uint64_t current = impl_->version_of(stream);
    const std::vector<RecordedEvent> found = impl_->stored_with_ids(events);
    if (auto original =
            internal::decide_append(stream, expected, events, found, current, impl_->counters)) {
      return *original;
    }
    if (events.empty()) return AppendResult{.version = current, .position = 0};
    // Ids are drawn before anything changes, so that nothing can throw half-way.
    std::vector<std::string> ids;
    ids.reserve(events.size());
    for (const NewEvent& event : events) ids.push_back(internal::id_or_new(event));
    // Room first (growing geometrically), so that the loop below does not reallocate midway.
    auto& indexes = impl_->streams[std::string(stream)];
    reserve_more(impl_->log, events.size());
    reserve_more(indexes, events.size());
    const WallTime now = impl_->clock.wall_now();
    for (std::size_t i = 0; i < events.size(); ++i) {
      const std::size_t index = impl_->log.size();
      impl_->log.push_back(RecordedEvent{.stream = std::string(stream),
                                         .version = current + i + 1,
                                         .position = index + 1,
                                         .id = std::move(ids[i]),
                                         .type = events[i].type,
                                         .data = events[i].data,
                                         .metadata = events[i].metadata,
                                         .recorded_at = now});
      indexes.push_back(index);
      impl_->by_id.emplace(impl_->log.back().id, index);
    }
    result = AppendResult{.version = current + events.size(), .position = impl_->log.size()};
  }
  impl_->counters.wrote(events.size());
  impl_->hub.notify();
  return result;
}

std::vector<RecordedEvent> InMemoryEventStore::read_stream(std::string_view stream,
                                                           std::uint64_t from_version,
                                                           std::size_t max_count) {
  std::shared_lock lock(impl_->mu);
  std::vector<RecordedEvent> events;
  const auto it = impl_->streams.find(stream);
  if (it == impl_->streams.end()) return events;
  const std::vector<std::size_t>& indexes = it->second;
  const std::size_t first = static_cast<std::size_t>(
      std::min<std::uint64_t>(std::max<std::uint64_t>(from_version, 1) - 1, indexes.size()));
  const std::size_t count = std::min(max_count, indexes.size() - first);
  events.reserve(count);
  for (std::size_t i = first; i < first + count; ++i) events.push_back(impl_->log[indexes[i]]);
  return events;
}

std::vector<RecordedEvent> InMemoryEventStore::read_all(std::uint64_t after_position,
                                                        std::size_t max_count) {
  return impl_->read_all(after_position, max_count);
}

std::uint64_t InMemoryEventStore::stream_version(std::string_view stream) {
  std::shared_lock lock(impl_->mu);
  return impl_->version_of(stream);
}

Subscription InMemoryEventStore::subscribe_all(std::uint64_t after_position, EventHandler handler) {
  return impl_->hub.subscribe(after_position, std::move(handler));
}

EventStoreMetrics InMemoryEventStore::metrics() const {
  return impl_->hub.metrics(impl_->counters);
}

}  // namespace keel::cqrs
