#include "keel/ratelimit/http_headers.h"

#include <gtest/gtest.h>

namespace keel::ratelimit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(HttpHeadersTest, DenialCarriesRetryAfterRoundedUp) {
  const Decision denied{.allowed = false,
                        .limit = 100,
                        .remaining = 0,
                        .retry_after = milliseconds(1200),
                        .reset_after = milliseconds(29'001)};
  const Headers headers = rate_limit_headers(denied, {.window = seconds(60)});
  EXPECT_EQ(headers, (Headers{{"Retry-After", "2"},
                              {"RateLimit-Policy", R"("default";q=100;w=60)"},
                              {"RateLimit", R"("default";r=0;t=30)"},
                              {"X-RateLimit-Limit", "100"},
                              {"X-RateLimit-Remaining", "0"},
                              {"X-RateLimit-Reset", "30"}}));
}

TEST(HttpHeadersTest, AllowedHasNoRetryAfterAndNamesThePolicy) {
  const Decision allowed{.allowed = true,
                         .limit = 100,
                         .remaining = 50,
                         .retry_after = {},
                         .reset_after = seconds(30)};
  const Headers headers = rate_limit_headers(
      allowed, {.policy = "per-client", .window = std::nullopt, .legacy_fields = false});
  EXPECT_EQ(headers, (Headers{{"RateLimit-Policy", R"("per-client";q=100)"},
                              {"RateLimit", R"("per-client";r=50;t=30)"}}));
}

TEST(HttpHeadersTest, ARequestThatCanNeverPassGetsNoRetryAfter) {
  const Decision never{.allowed = false, .limit = 5, .retry_after = Duration::max()};
  const Headers headers = rate_limit_headers(never, {.draft_fields = false});
  EXPECT_EQ(headers.front().first, "X-RateLimit-Limit");
}

TEST(HttpHeadersTest, SecondsRoundUpAndNeverGoNegative) {
  EXPECT_EQ(header_seconds(Duration::zero()), 0);
  EXPECT_EQ(header_seconds(-seconds(3)), 0);
  EXPECT_EQ(header_seconds(Duration(1)), 1);
  EXPECT_EQ(header_seconds(seconds(2)), 2);
  EXPECT_GT(header_seconds(Duration::max()), 9'000'000'000);
}

TEST(HttpHeadersTest, RejectsPolicyNamesThatWouldBreakTheField) {
  const Decision d{.allowed = true, .limit = 1};
  for (const char* bad : {"", "a\"b", "a\\b", "new\nline"}) {
    EXPECT_THROW(rate_limit_headers(d, {.policy = bad}), std::invalid_argument) << bad;
  }
}

// Found by fuzz/ratelimit_headers_fuzzer.cc (fuzz/corpus/ratelimit_headers/huge_limit): a limit
// of 10^16 rendered q=10000000000000000, which no structured-field parser accepts (integers
// have at most 15 digits), and a negative count r=-1, which the draft does not allow.
TEST(HttpHeadersTest, CountsStayValidStructuredFieldIntegers) {
  const Decision huge{.allowed = true, .limit = 10'000'000'000'000'000, .remaining = -1};
  const Headers headers = rate_limit_headers(huge);
  EXPECT_EQ(headers, (Headers{{"RateLimit-Policy", R"("default";q=999999999999999)"},
                              {"RateLimit", R"("default";r=0;t=0)"},
                              {"X-RateLimit-Limit", "999999999999999"},
                              {"X-RateLimit-Remaining", "0"},
                              {"X-RateLimit-Reset", "0"}}));
}

}  // namespace
}  // namespace keel::ratelimit
