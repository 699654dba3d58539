#include "keel/cqrs/internal/append_rules.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "keel/core/encoding.h"
#include "keel/cqrs/internal/json.h"

namespace keel::cqrs::internal {
namespace {

void require_text(std::string_view text, std::string_view what) {
  if (text.empty()) throw std::invalid_argument(fmt::format("cqrs: empty {}", what));
  if (text.find('\0') != std::string_view::npos) {
    throw std::invalid_argument(
        fmt::format("cqrs: {} {} holds a NUL byte", what, quote_for_message(text)));
  }
}

void require_json(std::string_view text, std::string_view what, std::size_t index,
                  std::string_view stream) {
  boost::system::error_code error;
  boost::json::parse(boost::json::string_view(text.data(), text.size()), error, {}, json_options());
  if (error) {
    throw std::invalid_argument(
        fmt::format("cqrs: {} of event {} of stream {} is not valid JSON ({}): {}", what, index,
                    quote_for_message(stream), error.message(), quote_for_message(text)));
  }
}

bool same_event(const NewEvent& event, const RecordedEvent& stored) {
  return event.type == stored.type && event.data == stored.data &&
         event.metadata == stored.metadata;
}

// The stored event the batch's event `index` repeats; throws when it does not repeat one.
const RecordedEvent& repeated(
    std::span<const NewEvent> events, std::size_t index,
    const std::unordered_map<std::string_view, const RecordedEvent*>& by_id,
    const RecordedEvent& first_found) {
  const NewEvent& event = events[index];
  const auto it = event.id ? by_id.find(*event.id) : by_id.end();
  if (it == by_id.end()) {
    throw DuplicateEventId(first_found.id,
                           "was written by an earlier append, and this batch is not a "
                           "repeat of it (a retry must send the same events in the same order)");
  }
  return *it->second;
}

}  // namespace

boost::json::value parse_json(std::string_view text) {
  return boost::json::parse(boost::json::string_view(text.data(), text.size()), {}, json_options());
}

void validate_append(std::string_view stream, std::span<const NewEvent> events) {
  require_text(stream, "stream name");
  std::unordered_set<std::string_view> ids;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const NewEvent& event = events[i];
    require_text(event.type, fmt::format("type of event {}", i));
    require_json(event.data, "data", i, stream);
    if (!event.metadata.empty()) require_json(event.metadata, "metadata", i, stream);
    if (!event.id) continue;
    require_text(*event.id, fmt::format("id of event {}", i));
    if (!ids.insert(*event.id).second) {
      throw DuplicateEventId(*event.id, "is given to two events of one batch");
    }
  }
}

std::vector<std::string> explicit_ids(std::span<const NewEvent> events) {
  std::vector<std::string> ids;
  for (const NewEvent& event : events) {
    if (event.id) ids.push_back(*event.id);
  }
  return ids;
}

std::optional<AppendResult> decide_append(std::string_view stream, ExpectedVersion expected,
                                          std::span<const NewEvent> events,
                                          std::span<const RecordedEvent> found,
                                          std::uint64_t current, AppendCounters& counters) {
  if (!found.empty()) {
    std::unordered_map<std::string_view, const RecordedEvent*> by_id;
    for (const RecordedEvent& stored : found) by_id.emplace(stored.id, &stored);
    const RecordedEvent& first = repeated(events, 0, by_id, found.front());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const RecordedEvent& stored = repeated(events, i, by_id, found.front());
      if (stored.stream != stream || stored.version != first.version + i ||
          !same_event(events[i], stored)) {
        throw DuplicateEventId(stored.id,
                               fmt::format("already names event {} of stream {}", stored.version,
                                           quote_for_message(stored.stream)));
      }
    }
    if (expected.accepts(first.version - 1)) {
      counters.idempotent_retries.fetch_add(1, std::memory_order_relaxed);
      const RecordedEvent& last = repeated(events, events.size() - 1, by_id, found.front());
      return AppendResult{.version = last.version, .position = last.position};
    }
  } else if (expected.accepts(current)) {
    return std::nullopt;
  }
  counters.conflicts.fetch_add(1, std::memory_order_relaxed);
  throw WrongExpectedVersion(std::string(stream), expected, current);
}

std::string new_event_id() {
  struct Generator {
    pid_t pid = -1;
    std::mt19937_64 random;
  };
  thread_local Generator generator;
  // A forked child inherits its parent's state: reseed in each process, or a parent and its
  // child would draw the same ids (and the second to append one would fail).
  if (const pid_t pid = ::getpid(); pid != generator.pid) {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    generator.random.seed(seed);
    generator.pid = pid;
  }
  const std::uint64_t high = (generator.random() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const std::uint64_t low = (generator.random() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", high >> 32, (high >> 16) & 0xffff,
                     high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

std::string id_or_new(const NewEvent& event) { return event.id ? *event.id : new_event_id(); }

}  // namespace keel::cqrs::internal
