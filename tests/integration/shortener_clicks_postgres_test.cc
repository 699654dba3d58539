// The shortener's durable click analytics on a real PostgreSQL (tests/support): two nodes, each
// with its own bus, recorder, event store and stats over one database, count every click once
// whichever node recorded it, and the tables can be rebuilt from the log.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "case_studies/url_shortener/click_log.h"
#include "keel/postgres/connection.h"
#include "keel/postgres/event_store.h"
#include "tests/support/postgres_server.h"

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;
using Pairs = std::vector<std::pair<std::string, std::uint64_t>>;

constexpr WallTime kDay1{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}.time_since_epoch()};

class ShortenerClicksPostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = keel::testing::PostgresServer::start(); }
  static void TearDownTestSuite() { server_.reset(); }
  static std::string new_database() {
    static int n = 0;
    return server_->create_database("clicks_" + std::to_string(++n));
  }
  static inline std::unique_ptr<keel::testing::PostgresServer> server_;
};

// One shortener process's analytics.
struct Node {
  explicit Node(const std::string& database)
      : events(database), stats(events, database), recorder(bus, events, scheduler, options()) {}
  static ClickRecorderOptions options() {
    return {.max_batch = 50, .flush_interval = 1s, .delivery = pubsub::Delivery::synchronous};
  }
  ManualClock clock;
  ManualScheduler scheduler{clock};
  pubsub::EventBus bus;
  postgres::PostgresEventStore events;
  PostgresClickStats stats;
  ClickRecorder recorder;
};

TEST_F(ShortenerClicksPostgresTest, TwoNodesCountEveryClickOnce) {
  const std::string database = new_database();
  Node a(database);
  Node b(database);
  constexpr int kPerThread = 400;
  auto click_on = [&](Node& node, const char* referrer) {
    for (int i = 0; i < kPerThread; ++i) {
      publish_click(node.bus, Click{.code = "abc1234", .at = kDay1, .referrer = referrer,
                                    .agent = "browser", .client = "198.51.100.0/24"});
    }
  };
  std::thread ta([&] { click_on(a, "a.example"); });
  std::thread tb([&] { click_on(b, "b.example"); });
  ta.join();
  tb.join();
  EXPECT_TRUE(a.recorder.flush());
  EXPECT_TRUE(b.recorder.flush());

  const LinkStats seen_by_a = a.stats.stats("abc1234");
  EXPECT_EQ(seen_by_a.clicks, 2U * kPerThread);
  EXPECT_EQ(seen_by_a.referrers, (Pairs{{"a.example", kPerThread}, {"b.example", kPerThread}}));
  EXPECT_EQ(seen_by_a.daily, (Pairs{{"2026-11-28", 2 * kPerThread}}));
  EXPECT_EQ(b.stats.stats("abc1234").clicks, 2U * kPerThread) << "both nodes read one model";
  EXPECT_EQ(a.recorder.metrics().recorded + b.recorder.metrics().recorded, 2U * kPerThread);
  EXPECT_EQ(a.events.stream_version(kClickStream), 2U * kPerThread);

  postgres::Connection(database).execute("DELETE FROM shortener_referrers");
  a.stats.rebuild();
  EXPECT_EQ(b.stats.stats("abc1234").referrers,
            (Pairs{{"a.example", kPerThread}, {"b.example", kPerThread}}));
  EXPECT_EQ(b.stats.total_clicks(), 2U * kPerThread);
}

TEST_F(ShortenerClicksPostgresTest, ClicksAppendedByTheTimerSurviveANewProcess) {
  const std::string database = new_database();
  {
    Node node(database);
    publish_click(node.bus, Click{.code = "zz00000", .at = kDay1, .referrer = "direct",
                                  .agent = "cli", .client = "198.51.100.0/24"});
    EXPECT_EQ(node.stats.stats("zz00000").clicks, 0U);
    node.clock.advance(1s);
    EXPECT_EQ(node.stats.stats("zz00000").clicks, 1U);
  }
  Node restarted(database);
  EXPECT_EQ(restarted.stats.stats("zz00000").clicks, 1U);
}

}  // namespace
}  // namespace keel::shortener
