#include "case_studies/url_shortener/link_store.h"

#include <fmt/format.h>

#include <limits>
#include <stdexcept>

#include "keel/core/encoding.h"

namespace keel::shortener {

void require_storable(const Link& link) {
  if (!storable(link.code)) {
    throw std::invalid_argument(
        fmt::format("link store: the code {} contains a NUL byte", quote_for_message(link.code)));
  }
  if (!storable(link.url)) {
    throw std::invalid_argument(
        fmt::format("link store: the URL {} contains a NUL byte", quote_for_message(link.url)));
  }
}

void require_counter_count(std::uint64_t count) {
  if (count == 0 || count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw std::invalid_argument(
        fmt::format("reserve_counter: count must be in [1, 2^63), got {}", count));
  }
}

}  // namespace keel::shortener
