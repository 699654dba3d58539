// The durable click analytics (click_log.h) on SQLite: clicks from the bus become events in
// batches (by size and by time on a manual clock), the inline read model answers the stats, and
// everything survives a restart; a failing store keeps the clicks for the next flush.
#include "case_studies/url_shortener/click_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "keel/cqrs/event_store.h"
#include "keel/sqlite/database.h"
#include "keel/sqlite/event_store.h"
#include "tests/support/temp_dir.h"

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;
using Pairs = std::vector<std::pair<std::string, std::uint64_t>>;

constexpr WallTime kDay1{std::chrono::sys_days{std::chrono::year{2026} / 11 / 28}.time_since_epoch()};
constexpr WallTime kDay2 = kDay1 + std::chrono::hours(24);

Click click(std::string code, WallTime at, std::string referrer = "direct") {
  return Click{.code = std::move(code), .at = at, .referrer = std::move(referrer),
               .agent = "browser", .client = "203.0.113.0/24"};
}

class ClickLogTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "links.db").string(); }

  keel::testing::TempDir dir_{"keel-click-log"};
  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  pubsub::EventBus bus_;
};

TEST_F(ClickLogTest, ClicksAreAppendedByTimeThenCountedPerLinkReferrerAndDay) {
  sqlite::SqliteEventStore events(path());
  SqliteClickStats stats(events, path());
  ClickRecorder recorder(bus_, events, scheduler_,
                         {.max_batch = 100, .flush_interval = 250ms,
                          .delivery = pubsub::Delivery::synchronous});
  publish_click(bus_, click("abc1234", kDay1, "news.example"));
  publish_click(bus_, click("abc1234", kDay1));
  publish_click(bus_, click("abc1234", kDay2, "news.example"));
  publish_click(bus_, click("zzz9999", kDay2));

  EXPECT_EQ(recorder.metrics().buffered, 4U);
  EXPECT_EQ(stats.stats("abc1234").clicks, 0U) << "not appended before the flush interval";
  clock_.advance(250ms);
  EXPECT_EQ(recorder.metrics().recorded, 4U);
  EXPECT_EQ(recorder.metrics().appends, 1U) << "one batch";
  EXPECT_EQ(events.stream_version(kClickStream), 4U);

  const LinkStats abc = stats.stats("abc1234");
  EXPECT_EQ(abc.clicks, 3U);
  EXPECT_EQ(abc.referrers, (Pairs{{"news.example", 2}, {"direct", 1}}));
  EXPECT_EQ(abc.daily, (Pairs{{"2026-11-28", 2}, {"2026-11-29", 1}}));
  EXPECT_EQ(stats.stats("zzz9999").clicks, 1U);
  EXPECT_EQ(stats.stats("missing").clicks, 0U);
  EXPECT_EQ(stats.total_clicks(), 4U);
}

TEST_F(ClickLogTest, AFullBatchIsAppendedAtOnceAndTheTimerKeepsFlushing) {
  sqlite::SqliteEventStore events(path());
  SqliteClickStats stats(events, path());
  ClickRecorder recorder(bus_, events, scheduler_,
                         {.max_batch = 3, .flush_interval = 1s,
                          .delivery = pubsub::Delivery::synchronous});
  for (int i = 0; i < 7; ++i) publish_click(bus_, click("abc1234", kDay1));
  EXPECT_EQ(recorder.metrics().recorded, 6U) << "two full batches, without waiting";
  EXPECT_EQ(recorder.metrics().buffered, 1U);
  clock_.advance(1s);
  EXPECT_EQ(recorder.metrics().recorded, 7U);
  publish_click(bus_, click("abc1234", kDay1));
  clock_.advance(1s);
  EXPECT_EQ(recorder.metrics().recorded, 8U) << "the flush timer re-arms itself";
  EXPECT_EQ(stats.stats("abc1234").clicks, 8U);
}

TEST_F(ClickLogTest, StatsSurviveARestartAndTheRecorderFlushesOnDestruction) {
  {
    sqlite::SqliteEventStore events(path());
    SqliteClickStats stats(events, path());
    ClickRecorder recorder(bus_, events, scheduler_,
                           {.delivery = pubsub::Delivery::synchronous});
    publish_click(bus_, click("abc1234", kDay1, "a.example"));
    publish_click(bus_, click("abc1234", kDay1, "b.example"));
  }  // the recorder appends what it holds
  sqlite::SqliteEventStore events(path());
  SqliteClickStats stats(events, path());
  EXPECT_EQ(stats.stats("abc1234").clicks, 2U);
  EXPECT_EQ(stats.total_clicks(), 2U);
}

TEST_F(ClickLogTest, RebuildRefoldsTheLogIntoDamagedTables) {
  sqlite::SqliteEventStore events(path());
  SqliteClickStats stats(events, path());
  const std::vector<cqrs::NewEvent> batch{click_event(click("abc1234", kDay1)),
                                          click_event(click("abc1234", kDay2, "x.example"))};
  events.append(kClickStream, cqrs::ExpectedVersion::any(), batch);
  sqlite::Database(path()).execute("UPDATE shortener_clicks SET clicks = 0; DELETE FROM shortener_daily");
  EXPECT_EQ(stats.stats("abc1234").clicks, 0U);
  stats.rebuild();
  const LinkStats abc = stats.stats("abc1234");
  EXPECT_EQ(abc.clicks, 2U);
  EXPECT_EQ(abc.daily, (Pairs{{"2026-11-28", 1}, {"2026-11-29", 1}}));
}

// A store whose appends fail on demand: the recorder's view of a database that is down.
class FailingStore final : public cqrs::EventStore {
 public:
  bool failing = false;
  cqrs::AppendResult append(std::string_view stream, cqrs::ExpectedVersion expected,
                            std::span<const cqrs::NewEvent> events) override {
    if (failing) throw std::runtime_error("database is down");
    return inner.append(stream, expected, events);
  }
  std::vector<cqrs::RecordedEvent> read_stream(std::string_view s, std::uint64_t from,
                                               std::size_t n) override {
    return inner.read_stream(s, from, n);
  }
  std::vector<cqrs::RecordedEvent> read_all(std::uint64_t after, std::size_t n) override {
    return inner.read_all(after, n);
  }
  std::uint64_t stream_version(std::string_view s) override { return inner.stream_version(s); }
  Subscription subscribe_all(std::uint64_t after, cqrs::EventHandler handler) override {
    return inner.subscribe_all(after, std::move(handler));
  }
  cqrs::InMemoryEventStore inner;
};

TEST_F(ClickLogTest, AFailedAppendKeepsTheClicksInOrderAndTheCapDropsTheOldest) {
  FailingStore store;
  ClickRecorder recorder(bus_, store, scheduler_,
                         {.max_batch = 2, .flush_interval = 1s, .max_buffered = 4,
                          .delivery = pubsub::Delivery::synchronous});
  store.failing = true;
  for (const char* code : {"c000001", "c000002", "c000003", "c000004", "c000005"}) {
    publish_click(bus_, click(code, kDay1));
  }
  ClickRecorderMetrics m = recorder.metrics();
  EXPECT_GE(m.failures, 1U);
  EXPECT_EQ(m.buffered, 4U);
  EXPECT_EQ(m.dropped, 1U) << "over max_buffered, the oldest click goes";
  EXPECT_EQ(m.recorded, 0U);

  store.failing = false;
  EXPECT_TRUE(recorder.flush());
  m = recorder.metrics();
  EXPECT_EQ(m.recorded, 4U);
  EXPECT_EQ(m.buffered, 0U);
  std::vector<std::string> codes;
  for (const auto& e : store.read_stream(kClickStream, 1, SIZE_MAX)) {
    codes.push_back(click_from_event(e).code);
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"c000002", "c000003", "c000004", "c000005"}));
}

TEST_F(ClickLogTest, InvalidMessagesAndOptionsAreRefused) {
  cqrs::InMemoryEventStore store;
  EXPECT_THROW(ClickRecorder(bus_, store, scheduler_, {.max_batch = 0}), std::invalid_argument);
  EXPECT_THROW(ClickRecorder(bus_, store, scheduler_, {.flush_interval = 0s}),
               std::invalid_argument);
  EXPECT_THROW(ClickRecorder(bus_, store, scheduler_, {.max_batch = 10, .max_buffered = 5}),
               std::invalid_argument);

  ClickRecorder recorder(bus_, store, scheduler_, {.delivery = pubsub::Delivery::synchronous});
  bus_.publish(kClickTopic, "not json");
  bus_.publish(kClickTopic, R"({"code": 7})");
  EXPECT_EQ(recorder.metrics().dropped, 2U);
  EXPECT_EQ(recorder.metrics().buffered, 0U);

  cqrs::RecordedEvent other{.type = "Other"};
  EXPECT_THROW(click_from_event(other), std::invalid_argument);
}

TEST_F(ClickLogTest, AClickRoundTripsThroughItsEvent) {
  const Click original = click("abc1234", kDay1 + 1234ms, "news.example");
  cqrs::InMemoryEventStore store;
  const std::vector<cqrs::NewEvent> batch{click_event(original)};
  store.append(kClickStream, cqrs::ExpectedVersion::any(), batch);
  const Click back = click_from_event(store.read_stream(kClickStream, 1, 1).at(0));
  EXPECT_EQ(back.code, original.code);
  EXPECT_EQ(back.at, original.at);
  EXPECT_EQ(back.referrer, original.referrer);
  EXPECT_EQ(back.agent, original.agent);
  EXPECT_EQ(back.client, original.client);
}

}  // namespace
}  // namespace keel::shortener
