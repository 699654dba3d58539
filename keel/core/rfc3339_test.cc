#include "keel/core/rfc3339.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace keel {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

WallTime at_seconds(std::int64_t s) { return WallTime{seconds(s)}; }

TEST(Rfc3339Test, ReadsUtcOffsetsAndFractions) {
  // 2030-01-31T09:30:00Z = 1,896,082,200 s after the epoch.
  const WallTime t = at_seconds(1896082200);
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:30:00Z"), t);
  EXPECT_EQ(parse_rfc3339("2030-01-31t09:30:00z"), t);
  EXPECT_EQ(parse_rfc3339("2030-01-31 09:30:00Z"), t);
  EXPECT_EQ(parse_rfc3339("2030-01-31T10:30:00+01:00"), t);
  EXPECT_EQ(parse_rfc3339("2030-01-31T00:00:00-09:30"), t);
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:30:00.250Z"), t + milliseconds(250));
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:30:00.5Z"), t + milliseconds(500));
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:30:00.123456789Z"), t + nanoseconds(123456789));
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:30:00.1234567891234Z"), t + nanoseconds(123456789))
      << "digits past the nanosecond are ignored";
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), WallTime{});
  EXPECT_EQ(parse_rfc3339("2028-02-29T00:00:00Z"), at_seconds(1835395200)) << "a leap day";
  EXPECT_EQ(parse_rfc3339("2030-01-31T09:29:60Z"), t) << "a leap second is the next second";
}

TEST(Rfc3339Test, RefusesAnythingLooser) {
  for (const char* bad : {
           "", "2030", "2030-01-31", "2030-01-31T09:30Z", "2030-01-31T09:30:00",
           "2030-1-31T09:30:00Z", "2030-01-1T09:30:00Z", "2030-01-31T9:30:00Z",
           " 2030-01-31T09:30:00Z", "2030-01-31T09:30:00Z ", "+2030-01-31T09:30:00Z",
           "2030-01-31X09:30:00Z", "2030/01/31T09:30:00Z", "2030-01-31T09.30.00Z",
           "2030-01-31T09:30:00.Z", "2030-01-31T09:30:00+0100", "2030-01-31T09:30:00+01",
           "2030-01-31T09:30:00+1:00", "2030-01-31T09:30:00+24:00", "2030-01-31T09:30:00+01:60",
           "2030-13-01T00:00:00Z", "2030-00-01T00:00:00Z", "2030-04-31T00:00:00Z",
           "2029-02-29T00:00:00Z", "2030-01-31T24:00:00Z", "2030-01-31T23:60:00Z",
           "2030-01-31T23:59:61Z", "1969-12-31T23:59:59Z", "2201-01-01T00:00:00Z",
           "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2030-01-31T09:30:00ZZ",
           "2030-01-31T09:30:00\0Z"}) {
    EXPECT_EQ(parse_rfc3339(bad), std::nullopt) << '"' << bad << '"';
  }
  const std::string with_nul("2030-01-31T09:30:00Z\0", 21);
  EXPECT_EQ(parse_rfc3339(with_nul), std::nullopt);
}

TEST(Rfc3339Test, WritesUtcAndRoundTrips) {
  const WallTime t = at_seconds(1896082200) + milliseconds(250) + nanoseconds(999);
  EXPECT_EQ(format_rfc3339(t), "2030-01-31T09:30:00Z");
  EXPECT_EQ(format_rfc3339(t, Rfc3339Precision::milliseconds), "2030-01-31T09:30:00.250Z");
  EXPECT_EQ(format_rfc3339(at_seconds(1896082200), Rfc3339Precision::milliseconds),
            "2030-01-31T09:30:00Z");
  EXPECT_EQ(format_rfc3339(WallTime{} - milliseconds(1), Rfc3339Precision::milliseconds),
            "1969-12-31T23:59:59.999Z")
      << "truncated towards the past";
  for (const WallTime u : {WallTime{}, at_seconds(1896082200) + milliseconds(7),
                           at_seconds(7258118399)}) {  // 2199-12-31T23:59:59Z
    const std::string text = format_rfc3339(u, Rfc3339Precision::milliseconds);
    EXPECT_EQ(parse_rfc3339(text), u) << text;
  }
}

}  // namespace
}  // namespace keel
