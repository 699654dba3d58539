// Parsing event JSON (data, metadata, snapshots) the same way everywhere in keel::cqrs: the
// stores accept nesting up to kMaxJsonDepth, so every reader must parse that deep too.
// Thread safety: pure functions.
#pragma once

#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <string_view>

namespace keel::cqrs::internal {

// Boost.JSON refuses nesting deeper than 32 by default; valid documents go deeper than that.
// 1,000 still bounds the parser's memory against a hostile body.
inline constexpr std::size_t kMaxJsonDepth = 1000;

inline boost::json::parse_options json_options() {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  return options;
}

// Throws boost::system::system_error for text that is not JSON.
boost::json::value parse_json(std::string_view text);

}  // namespace keel::cqrs::internal
