// The configuration file's numbers: every key has a range, and a value outside it (or of the
// wrong kind) is refused with an error naming the key, before any conversion can overflow or
// narrow.
#include "case_studies/notification_system/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The message parse_config throws for `json`, or "" when it accepts it.
std::string error_of(std::string_view json) {
  try {
    parse_config(json);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

struct Edge {
  const char* json = "";
  const char* key = "";  // named in the error; "" = accepted
};

TEST(ConfigTest, EveryNumberIsCheckedAgainstItsRange) {
  const Edge edges[] = {
      {R"({"retry": {"max_attempts": 1}})", ""},
      {R"({"retry": {"max_attempts": 100}})", ""},
      {R"({"retry": {"max_attempts": 0}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": 101}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": -1}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": 2.5}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": 3.0}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": 4294967297}})", "retry.max_attempts"},  // 2^32 + 1
      {R"({"retry": {"max_attempts": 18446744073709551615}})", "retry.max_attempts"},
      {R"({"retry": {"max_attempts": "5"}})", "retry.max_attempts"},
      {R"({"retry": {"initial_seconds": 0.001}})", ""},
      {R"({"retry": {"initial_seconds": 0}})", "retry.initial_seconds"},
      {R"({"retry": {"initial_seconds": -2}})", "retry.initial_seconds"},
      {R"({"retry": {"max_delay_seconds": 86400}})", ""},
      {R"({"retry": {"max_delay_seconds": 86400.5}})", "retry.max_delay_seconds"},
      {R"({"retry": {"max_delay_seconds": 1e300}})", "retry.max_delay_seconds"},
      {R"({"retry": {"max_retry_after_seconds": 0}})", ""},
      {R"({"retry": {"max_retry_after_seconds": 86400}})", ""},
      {R"({"retry": {"max_retry_after_seconds": 1e10}})", "retry.max_retry_after_seconds"},
      {R"({"retry": {"max_retry_after_seconds": -1}})", "retry.max_retry_after_seconds"},
      {R"({"workers": {"critical": 256}})", ""},
      {R"({"workers": {"critical": 257}})", "workers.critical"},
      {R"({"workers": {"standard": 1000000000}})", "workers.standard"},
      {R"({"workers": {"standard": 0}})", "workers.standard"},
      {R"({"workers": {"standard": 1.5}})", "workers.standard"},
      {R"({"rate_limit": {"per_second": 0.001}})", ""},
      {R"({"rate_limit": {"per_second": 0}})", "rate_limit.per_second"},
      {R"({"rate_limit": {"per_second": 1e7}})", "rate_limit.per_second"},
      {R"({"rate_limit": {"burst": 1000000}})", ""},
      {R"({"rate_limit": {"burst": 1000001}})", "rate_limit.burst"},
      {R"({"rate_limit": {"burst": 0}})", "rate_limit.burst"},
      {R"({"aging_seconds": 86400})", ""},
      {R"({"aging_seconds": 0})", "aging_seconds"},
      {R"({"aging_seconds": 1e12})", "aging_seconds"},
      {R"({"lease_seconds": 0.1})", ""},
      {R"({"lease_seconds": 3600})", ""},
      {R"({"lease_seconds": 0.05})", "lease_seconds"},
      {R"({"lease_seconds": 3601})", "lease_seconds"},
      {R"({"poll_milliseconds": 0})", ""},
      {R"({"poll_milliseconds": 3600000})", ""},
      {R"({"poll_milliseconds": 3600001})", "poll_milliseconds"},
      {R"({"poll_milliseconds": -1})", "poll_milliseconds"},
      {R"({"poll_milliseconds": 9223372036854775807})", "poll_milliseconds"},
  };
  for (const Edge& edge : edges) {
    const std::string error = error_of(edge.json);
    if (std::string_view(edge.key).empty()) {
      EXPECT_EQ(error, "") << edge.json << " must be accepted";
    } else {
      EXPECT_THAT(error, HasSubstr(fmt::format("config: {} must be", edge.key)))
          << edge.json << " must be refused, naming " << edge.key;
    }
  }
}

TEST(ConfigTest, TheErrorSaysTheRangeAndTheValue) {
  EXPECT_EQ(error_of(R"({"retry": {"max_attempts": 0}})"),
            "config: retry.max_attempts must be an integer from 1 to 100, got 0");
  EXPECT_EQ(error_of(R"({"retry": {"max_retry_after_seconds": 1e10}})"),
            "config: retry.max_retry_after_seconds must be a number from 0 to 86400, got "
            "10000000000");
}

TEST(ConfigTest, ValuesInRangeAreTakenExactly) {
  const NotifierConfig config = parse_config(
      R"({"retry": {"max_attempts": 100, "initial_seconds": 0.5, "max_delay_seconds": 86400,
                    "max_retry_after_seconds": 86400},
          "workers": {"critical": 256, "standard": 1},
          "rate_limit": {"per_second": 0.001, "burst": 1000000},
          "aging_seconds": 300, "lease_seconds": 0.1, "poll_milliseconds": 3600000})");
  const NotifierOptions& o = config.notifier;
  EXPECT_EQ(o.retry.max_attempts, 100);
  EXPECT_EQ(o.retry.initial, 500ms);
  EXPECT_EQ(o.retry.max_delay, 24h);
  EXPECT_EQ(o.retry.max_retry_after, 24h) << "no overflow at the top of the range";
  EXPECT_EQ(o.critical_workers.threads, 256u);
  EXPECT_EQ(o.standard_workers.threads, 1u);
  EXPECT_EQ(o.user_limit.rate_per_second, 0.001);
  EXPECT_EQ(o.lease, 100ms);
  EXPECT_EQ(o.poll_interval, 1h);
  EXPECT_EQ(config.queue.aging_step, 5min);
}

TEST(ConfigTest, InitialDelayAboveTheCapIsRefused) {
  EXPECT_THAT(error_of(R"({"retry": {"initial_seconds": 20, "max_delay_seconds": 10}})"),
              HasSubstr("retry.max_delay_seconds"));
}

}  // namespace
}  // namespace keel::notifier
