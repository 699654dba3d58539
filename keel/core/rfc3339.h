// RFC 3339 timestamps (section 5.6 date-time), as the services' JSON APIs read and write them:
//
//   parse_rfc3339("2030-01-31T09:30:00Z")            → that instant
//   parse_rfc3339("2030-01-31T10:30:00.250+01:00")   → 09:30:00.250 UTC
//   format_rfc3339(at)                               → "2030-01-31T09:30:00Z"
//   format_rfc3339(at, Rfc3339Precision::milliseconds) → "...T09:30:00.250Z" (".000" omitted)
//
// The parser is strict, because it reads outside input: every field has its exact number of
// digits, "T", "t" or " " between date and time, a fraction of at least one digit (kept to the
// nanosecond, further digits ignored), then "Z", "z" or "±HH:MM". No leading or trailing spaces,
// no signs, no day 31 in April. Years 1970-2200 only: the instants a service stores and
// schedules, far from where WallTime's nanoseconds overflow (2262). A leap second (":60") is
// read as the second after ":59".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "keel/core/clock.h"

namespace keel {

// nullopt for anything that is not a valid date-time in 1970-2200.
std::optional<WallTime> parse_rfc3339(std::string_view text);

enum class Rfc3339Precision { seconds, milliseconds };

// UTC, with "Z". Truncates to the precision (towards the past, also before 1970).
std::string format_rfc3339(WallTime at, Rfc3339Precision precision = Rfc3339Precision::seconds);

}  // namespace keel
