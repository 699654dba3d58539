// keel::notifier::TimeZone: UTC offsets of an IANA time zone ("Europe/Paris"), read from the
// system's compiled tz database (/usr/share/zoneinfo, Debian's tzdata) — GCC 12's libstdc++ has
// no std::chrono::locate_zone yet, and this is all quiet hours need.
//
//   const TimeZone& paris = TimeZone::find("Europe/Paris");   // cached; throws when unknown
//   std::chrono::seconds offset = paris.offset_at(now);       // +3600 s in winter, +7200 s in
//   summer
//
// The reader takes the 64-bit transitions of a TZif file (RFC 8536, versions 2+). Debian ships
// "fat" files, whose transitions run to 2037; after the last transition the last offset holds
// (the POSIX TZ footer rule is not evaluated).
//
// Thread safety: find() is safe from any thread; a TimeZone is immutable.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"

namespace keel::notifier {

class TimeZone {
 public:
  // The zone named `name` from `dir`, loaded once per process and then cached. Throws
  // std::invalid_argument naming the zone when the name is malformed, unknown or the file is
  // not a TZif file.
  static const TimeZone& find(std::string_view name,
                              const std::filesystem::path& dir = "/usr/share/zoneinfo");
  // Parses a TZif file (tests). Throws std::invalid_argument as above.
  static TimeZone parse(std::string name, std::string_view tzif);

  const std::string& name() const noexcept { return name_; }
  // UTC offset in force at `at` (local time = UTC + offset).
  std::chrono::seconds offset_at(WallTime at) const noexcept;
  // The UTC instant at which the local wall clock shows `local` (seconds since the epoch, as if
  // local time were UTC). In a gap (spring forward) the instant after the gap; in an overlap the
  // first one.
  WallTime to_utc(std::chrono::sys_seconds local) const noexcept;

 private:
  std::string name_;
  std::vector<std::int64_t> transitions_;  // UTC seconds, increasing
  std::vector<std::int32_t> offsets_;      // offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;        // before the first transition
};

}  // namespace keel::notifier
