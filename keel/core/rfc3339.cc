#include "keel/core/rfc3339.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>

namespace keel {

std::optional<WallTime> parse_rfc3339(std::string_view s) {
  const auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > s.size()) return std::nullopt;
    int value = 0;
    for (std::size_t k = at; k < at + n; ++k) {
      if (s[k] < '0' || s[k] > '9') return std::nullopt;
      value = value * 10 + (s[k] - '0');
    }
    return value;
  };
  const auto is = [&](std::size_t at, std::string_view chars) {
    return at < s.size() && chars.find(s[at]) != std::string_view::npos;
  };
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  const auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !is(4, "-") || !is(7, "-") ||
      !is(10, "Tt ") || !is(13, ":") || !is(16, ":")) {
    return std::nullopt;
  }
  std::size_t i = 19;
  std::int64_t nanos = 0;
  if (is(i, ".")) {
    ++i;
    int count = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++count) {
      if (count < 9) nanos = nanos * 10 + (s[i] - '0');
    }
    if (count == 0) return std::nullopt;
    for (int d = count; d < 9; ++d) nanos *= 10;
  }
  int offset_minutes = 0;
  if (is(i, "Zz")) {
    ++i;
  } else if (is(i, "+-")) {
    const auto hh = digits(i + 1, 2), mm = digits(i + 4, 2);
    if (!hh || !mm || !is(i + 3, ":") || *hh > 23 || *mm > 59) return std::nullopt;
    offset_minutes = (s[i] == '-' ? -1 : 1) * (*hh * 60 + *mm);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (*year < 1970 || *year > 2200) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{*year},
                                         std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  const auto at = std::chrono::sys_days(date) + std::chrono::hours(*hour) +
                  std::chrono::minutes(*minute - offset_minutes) +
                  std::chrono::seconds(*second) + std::chrono::nanoseconds(nanos);
  return WallTime{std::chrono::duration_cast<WallTime::duration>(at.time_since_epoch())};
}

std::string format_rfc3339(WallTime at, Rfc3339Precision precision) {
  const auto whole = std::chrono::floor<std::chrono::seconds>(at);
  const std::chrono::sys_seconds seconds{whole.time_since_epoch()};
  if (precision == Rfc3339Precision::seconds) return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", seconds);
  const auto millis = std::chrono::floor<std::chrono::milliseconds>(at - whole).count();
  if (millis == 0) return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", seconds);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, millis);
}

}  // namespace keel
