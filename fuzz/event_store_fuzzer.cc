// The event store's input validation (keel/cqrs/event_store.h), on an InMemoryEventStore.
//
// Input: 1 byte (how many events, which carry ids), then '\n'-separated fields: the stream, and
// per event its type, id, metadata and data (the last event's data is the rest of the input).
// Checked: append() either throws std::invalid_argument — exactly when the documented rules
// (empty or NUL-holding stream, type or id; data not JSON; metadata neither empty nor JSON; one
// id twice in the batch) say it must — or stores the batch, which read_stream() and read_all()
// then give back byte-identical, at versions 1..n, with the ids given; the stored JSON parses
// with the readers' parser; and sending the same batch again (with ids) is an idempotent retry
// that writes nothing.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.h"
#include "keel/core/encoding.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/internal/json.h"

namespace {

using keel::cqrs::ExpectedVersion;
using keel::cqrs::NewEvent;
using keel::cqrs::RecordedEvent;

bool is_json(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = keel::cqrs::internal::kMaxJsonDepth;  // documented in internal/json.h
  boost::system::error_code error;
  boost::json::parse(boost::json::string_view(text.data(), text.size()), error, {}, options);
  return !error;
}

bool is_text(std::string_view text) {
  return !text.empty() && text.find('\0') == std::string_view::npos;
}

// Whether the documented rules accept the batch.
bool reference_valid(std::string_view stream, const std::vector<NewEvent>& events) {
  if (!is_text(stream)) return false;
  std::set<std::string> ids;
  for (const NewEvent& e : events) {
    if (!is_text(e.type) || !is_json(e.data)) return false;
    if (!e.metadata.empty() && !is_json(e.metadata)) return false;
    if (e.id && (!is_text(*e.id) || !ids.insert(*e.id).second)) return false;
  }
  return true;
}

void check_stored(keel::cqrs::InMemoryEventStore& store, std::string_view stream,
                  const std::vector<NewEvent>& events, keel::cqrs::AppendResult result) {
  const std::vector<RecordedEvent> read = store.read_stream(stream);
  KEEL_FUZZ_CHECK(read.size() == events.size(), "{} events read back of {}", read.size(),
                  events.size());
  KEEL_FUZZ_CHECK(store.read_all() == read, "read_all() differs from read_stream()");
  KEEL_FUZZ_CHECK(store.stream_version(stream) == events.size(), "stream version {}",
                  store.stream_version(stream));
  KEEL_FUZZ_CHECK(result.version == events.size() && result.position == events.size(),
                  "append returned version {} position {}", result.version, result.position);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const NewEvent& sent = events[i];
    const RecordedEvent& got = read[i];
    KEEL_FUZZ_CHECK(got.stream == stream && got.version == i + 1 && got.position == i + 1,
                    "event {} at version {} position {}", i, got.version, got.position);
    KEEL_FUZZ_CHECK(got.type == sent.type && got.data == sent.data && got.metadata == sent.metadata,
                    "event {} is not byte-identical", i);
    KEEL_FUZZ_CHECK(sent.id ? got.id == *sent.id : !got.id.empty(), "event {} has id '{}'", i,
                    got.id);
    try {
      (void)keel::cqrs::internal::parse_json(got.data);
      if (!got.metadata.empty()) (void)keel::cqrs::internal::parse_json(got.metadata);
    } catch (const std::exception& e) {
      KEEL_FUZZ_CHECK(false, "stored JSON of event {} does not parse for readers: {}", i, e.what());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  keel::fuzz::Input input(data, size);
  const std::uint8_t shape = input.byte();
  const std::size_t count = shape % 3 + 1;
  const std::string stream(input.until('\n'));
  std::vector<NewEvent> events(count);
  bool all_ids = true;
  for (std::size_t i = 0; i < count; ++i) {
    NewEvent& e = events[i];
    e.type = input.until('\n');
    const std::string_view id = input.until('\n');
    if ((shape >> (2 + i) & 1) != 0) {
      e.id = std::string(id);
    } else {
      all_ids = false;
    }
    e.metadata = input.until('\n');
    e.data = i + 1 == count ? input.rest() : input.until('\n');
  }

  keel::cqrs::InMemoryEventStore store;
  const bool valid = reference_valid(stream, events);
  keel::cqrs::AppendResult result;
  try {
    result = store.append(stream, ExpectedVersion::no_stream(), events);
  } catch (const std::invalid_argument& e) {
    KEEL_FUZZ_CHECK(!valid, "a valid batch was refused: {}", e.what());
    KEEL_FUZZ_CHECK(store.read_all().empty(), "a refused batch left events behind");
    return 0;
  }
  KEEL_FUZZ_CHECK(valid, "an invalid batch was stored (stream {})",
                  keel::quote_for_message(stream));
  check_stored(store, stream, events, result);
  if (all_ids) {
    const keel::cqrs::AppendResult again =
        store.append(stream, ExpectedVersion::no_stream(), events);
    KEEL_FUZZ_CHECK(again == result, "a retry returned version {} position {}", again.version,
                    again.position);
    KEEL_FUZZ_CHECK(store.read_all().size() == count, "a retry wrote events");
  }
  return 0;
}
