// keel-shortener on PostgreSQL and Redis (--postgres, --redis), with each engine crashed
// (SIGKILL to the server and all its processes) and started again on the same port and data
// directory while links are created and followed. keel-shortener is not restarted.
//
// Redis down: the documented fallback (docs/url_shortener.md, "Many nodes") is that lookups fall
// through to PostgreSQL and counter blocks come straight from PostgreSQL's counter row, so no
// request fails. PostgreSQL down: requests that need it get a clean error (an HTTP answer with
// a JSON error, never a hang or a dropped connection), counted in /metrics by status. After
// either restart the shortener uses the engine again on its own, and every link acknowledged
// before, during or after the outage still redirects to its URL.
//
// KEEL_FAULT_ROUNDS (default 1 here) sets the number of restarts of each engine.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <memory>
#include <regex>
#include <string>

#include "keel/http/client.h"
#include "tests/fault/link_load.h"
#include "tests/fault/service_process.h"
#include "tests/support/postgres_server.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;

int rounds() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts.
  const char* value = std::getenv("KEEL_FAULT_ROUNDS");
  const int n = value != nullptr ? std::atoi(value) : 0;
  return n > 0 ? n : 1;
}

// Keys in the Redis database: the shortener's cache entries and counter, once it uses Redis.
long long redis_keys(const RedisServer& redis) {
  redisContext* context = redisConnect("127.0.0.1", redis.port());
  long long keys = -1;
  if (context != nullptr && context->err == 0) {
    if (auto* reply = static_cast<redisReply*>(redisCommand(context, "DBSIZE"))) {
      if (reply->type == REDIS_REPLY_INTEGER) keys = reply->integer;
      freeReplyObject(reply);
    }
  }
  redisFree(context);
  return keys;
}

// The value of an unlabelled series in the service's /metrics; -1 when it is absent.
double metric(std::uint16_t port, std::string_view name) {
  const std::string text = http::Client("127.0.0.1", port).get("/metrics").body();
  const std::regex series(fmt::format(R"re((^|\n){} ([0-9.e+]+))re", name));
  std::smatch match;
  return std::regex_search(text, match, series) ? std::stod(match[2].str()) : -1;
}

// The value of http_requests_total for a method and status in the service's /metrics; 0 when
// the series is absent.
double requests_with_status(std::uint16_t port, std::string_view method, int status) {
  const std::string text = http::Client("127.0.0.1", port).get("/metrics").body();
  const std::regex series(fmt::format(
      R"re(http_requests_total\{{[^}}]*method="{}"[^}}]*status="{}"[^}}]*\}} ([0-9.e+]+))re",
      method, status));
  double total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), series);
       it != std::sregex_iterator(); ++it) {
    total += std::stod((*it)[1].str());
  }
  return total;
}

std::size_t sum(const std::map<int, std::size_t>& by_status) {
  std::size_t total = 0;
  for (const auto& [status, count] : by_status) total += count;
  return total;
}

class FaultShortenerEngineRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    postgres_ = PostgresServer::start();
    redis_ = RedisServer::start();
    service_ = std::make_unique<ServiceProcess>(
        "shortener",
        std::vector<std::string>{
            KEEL_SHORTENER_BINARY, "--db", (dir_.path() / "unused.db").string(), "--postgres",
            postgres_->create_database("shortener"), "--redis",
            fmt::format("127.0.0.1:{}", redis_->port()), "--base-url", "https://sho.rt",
            "--code-key", "fault-key", "--create-rate", "1000000", "--create-burst", "1000000"},
        dir_.path());
    service_->start();
  }

  // Waits until `n` more links than now are acknowledged.
  bool created_more(std::size_t n, Duration timeout = 30s) {
    const std::size_t target = load_.acknowledged() + n;
    return wait_until([&] { return load_.acknowledged() >= target; }, timeout, 1ms);
  }

  TempDir dir_{"keel-fault-engines"};
  std::unique_ptr<PostgresServer> postgres_;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<ServiceProcess> service_;
  LinkLoad load_{[this] { return service_->port(); }};
};

TEST_F(FaultShortenerEngineRestartTest, RedisCrashFallsThroughToPostgresWithoutAFailedRequest) {
  load_.start(3, "redis");
  ASSERT_TRUE(created_more(200)) << load_.last_failure();
  ASSERT_GT(redis_keys(*redis_), 0) << "the shortener does not use Redis";
  const std::string errors = "keel_shortener_redis_errors_total";
  ASSERT_GE(metric(service_->port(), errors), 0) << "/metrics has no " << errors;
  for (int round = 0; round < rounds(); ++round) {
    const double errors_before = metric(service_->port(), errors);
    redis_->stop(/*crash=*/true);
    // Creations and redirects go on while Redis is gone.
    EXPECT_TRUE(created_more(200)) << "creations stalled without Redis: " << load_.last_failure();
    const std::size_t redirects = load_.redirects();
    EXPECT_TRUE(wait_until([&] { return load_.redirects() >= redirects + 200; }, 30s, 1ms));
    // The fall-through is not silent: /metrics counts the failed Redis calls.
    EXPECT_GT(metric(service_->port(), errors), errors_before);
    ASSERT_NO_THROW(redis_->start_again());
    // Redis restarted empty (no persistence): the shortener fills it again on its own.
    EXPECT_TRUE(created_more(200)) << load_.last_failure();
    EXPECT_TRUE(wait_until([&] { return redis_keys(*redis_) > 0; }, 30s))
        << "the shortener did not reconnect to Redis";
  }
  load_.stop();
  EXPECT_TRUE(load_.failed_creations().empty())
      << sum(load_.failed_creations()) << " creations failed; last: " << load_.last_failure();
  EXPECT_TRUE(load_.failed_redirects().empty())
      << sum(load_.failed_redirects()) << " redirects failed; last: " << load_.last_failure();
  EXPECT_EQ(load_.unanswered(), 0u) << "requests dropped without an answer";
  EXPECT_EQ(load_.count_lost(service_->port()), 0u) << "of " << load_.acknowledged();
  RecordProperty("acknowledged_links", static_cast<int>(load_.acknowledged()));
  RecordProperty("redirects", static_cast<int>(load_.redirects()));
  std::printf("redis restarts %d, links %zu, redirects %zu, failed %zu\n", rounds(),
              load_.acknowledged(), load_.redirects(),
              sum(load_.failed_creations()) + sum(load_.failed_redirects()));
}

TEST_F(FaultShortenerEngineRestartTest, PostgresCrashGivesCleanErrorsThenRecoversOnItsOwn) {
  load_.start(3, "postgres");
  ASSERT_TRUE(created_more(200)) << load_.last_failure();
  for (int round = 0; round < rounds(); ++round) {
    const std::size_t failed_before = sum(load_.failed_creations());
    postgres_->stop(/*crash=*/true);
    // Creations need PostgreSQL: they fail, each with an answer.
    EXPECT_TRUE(
        wait_until([&] { return sum(load_.failed_creations()) >= failed_before + 20; }, 30s, 1ms))
        << "no creation failed while PostgreSQL was down\n"
        << tail_of_file(service_->log()) << "\nDEBUG " << service_->state() << " unanswered "
        << load_.unanswered();
    ASSERT_NO_THROW(postgres_->start_again());
    ASSERT_TRUE(created_more(200)) << "creations did not recover: " << load_.last_failure() << "\n"
                                   << tail_of_file(service_->log());
  }
  load_.stop();

  // Every failure was an answer: 500 with the JSON error body, none dropped or timed out.
  const auto failed_creations = load_.failed_creations();
  const auto failed_redirects = load_.failed_redirects();
  for (const auto& by_status : {failed_creations, failed_redirects}) {
    for (const auto& [status, count] : by_status) {
      EXPECT_TRUE(status == 500 || status == 503) << count << " answers with status " << status;
    }
  }
  EXPECT_NE(load_.last_failure().find(R"("error")"), std::string::npos) << load_.last_failure();
  EXPECT_EQ(load_.unanswered(), 0u) << "requests dropped without an answer";
  // The service's counters show the outage.
  EXPECT_GE(requests_with_status(service_->port(), "POST", 500) +
                requests_with_status(service_->port(), "POST", 503),
            static_cast<double>(sum(failed_creations)));
  EXPECT_EQ(load_.count_lost(service_->port()), 0u) << "of " << load_.acknowledged();
  RecordProperty("acknowledged_links", static_cast<int>(load_.acknowledged()));
  RecordProperty("failed_creations", static_cast<int>(sum(failed_creations)));
  RecordProperty("failed_redirects", static_cast<int>(sum(failed_redirects)));
  std::printf(
      "postgres restarts %d, links %zu, redirects %zu, failed creations %zu, failed redirects "
      "%zu\n",
      rounds(), load_.acknowledged(), load_.redirects(), sum(failed_creations),
      sum(failed_redirects));
}

}  // namespace
}  // namespace keel::testing
