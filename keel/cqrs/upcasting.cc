#include "keel/cqrs/upcasting.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <exception>
#include <utility>
#include <vector>

#include "keel/core/encoding.h"
#include "keel/core/internal/log.h"
#include "keel/cqrs/internal/json.h"

namespace keel::cqrs {
namespace {

// What an upcaster changed that it must not, or nullptr.
const char* broken_rule(const RecordedEvent& before, const RecordedEvent& after) {
  if (after.type.empty()) return "returned an empty type";
  if (after.stream != before.stream) return "changed the stream";
  if (after.version != before.version) return "changed the version";
  if (after.position != before.position) return "changed the position";
  if (after.id != before.id) return "changed the id";
  if (after.recorded_at != before.recorded_at) return "changed recorded_at";
  return nullptr;
}

}  // namespace

UpcastFailed::UpcastFailed(const RecordedEvent& event, std::string_view upcaster_type,
                           const std::string& why)
    : std::runtime_error(fmt::format(
          "cqrs: the upcaster of {} failed on the event at position {} (stream {}, version {}, "
          "stored as {}): {}",
          quote_for_message(upcaster_type), event.position, quote_for_message(event.stream),
          event.version, quote_for_message(event.type), why)),
      stream_(event.stream),
      position_(event.position),
      upcaster_type_(upcaster_type) {}

Upcasters& Upcasters::add(std::string type, Upcaster upcaster) {
  if (type.empty()) throw std::invalid_argument("cqrs: Upcasters::add with an empty type");
  if (!upcaster) {
    throw std::invalid_argument(
        fmt::format("cqrs: Upcasters::add({}) without an upcaster", quote_for_message(type)));
  }
  if (by_type_.contains(type)) {
    throw std::invalid_argument(
        fmt::format("cqrs: {} already has an upcaster", quote_for_message(type)));
  }
  by_type_.emplace(std::move(type), std::move(upcaster));
  return *this;
}

Upcasters& Upcasters::add(std::string type, std::string new_type, DataRewrite rewrite) {
  if (new_type.empty()) {
    throw std::invalid_argument(
        fmt::format("cqrs: Upcasters::add({}) to an empty type", quote_for_message(type)));
  }
  Upcaster upcaster = [new_type, rewrite = std::move(rewrite)](RecordedEvent event) {
    if (rewrite) {
      boost::json::value data = internal::parse_json(event.data);
      rewrite(data);
      event.data = boost::json::serialize(data);
    }
    event.type = new_type;
    return event;
  };
  return add(std::move(type), std::move(upcaster));
}

RecordedEvent Upcasters::upcast(RecordedEvent event) const {
  const RecordedEvent stored = event;  // for the checks and the message of a failure
  std::vector<std::string> passed;     // the chain so far, to stop a cycle
  for (auto it = by_type_.find(event.type); it != by_type_.end(); it = by_type_.find(event.type)) {
    passed.push_back(event.type);
    try {
      event = it->second(std::move(event));
    } catch (...) {
      throw UpcastFailed(stored, it->first, keel::internal::describe(std::current_exception()));
    }
    if (const char* rule = broken_rule(stored, event)) throw UpcastFailed(stored, it->first, rule);
    if (event.type == it->first) break;  // a rewrite in place ends the chain
    if (std::ranges::find(passed, event.type) != passed.end()) {
      throw UpcastFailed(
          stored, it->first,
          fmt::format("the chain comes back to {} (a cycle)", quote_for_message(event.type)));
    }
  }
  return event;
}

bool Upcasters::handles(std::string_view type) const { return by_type_.contains(type); }

}  // namespace keel::cqrs
