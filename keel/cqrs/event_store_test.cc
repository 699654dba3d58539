#include "keel/cqrs/event_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "keel/cqrs/event_store_conformance.h"
#include "keel/cqrs/internal/append_rules.h"

namespace keel::cqrs {
namespace testing {
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(
    EventStoreConcurrencyTest);  // runs in keel_cqrs_concurrency_test (under TSan)
}  // namespace testing
namespace {

using testing::event;
using testing::EventStoreCase;
using testing::EventStoreConformanceTest;

INSTANTIATE_TEST_SUITE_P(
    Memory, EventStoreConformanceTest,
    ::testing::Values(EventStoreCase{
        "memory", [](ManualClock& clock) { return std::make_unique<InMemoryEventStore>(clock); }}),
    testing::event_store_case_name);

TEST(ExpectedVersionTest, SaysWhatItExpects) {
  EXPECT_EQ(ExpectedVersion::any().to_string(), "any");
  EXPECT_EQ(ExpectedVersion::exactly(0).to_string(), "no_stream");
  EXPECT_EQ(ExpectedVersion::exactly(7).to_string(), "exactly(7)");
  EXPECT_EQ(ExpectedVersion::exactly(7).version(), 7U);
  EXPECT_EQ(ExpectedVersion::stream_exists().kind(), ExpectedVersion::Kind::stream_exists);
  const WrongExpectedVersion conflict("account-1", ExpectedVersion::exactly(3), 5);
  EXPECT_STREQ(conflict.what(), "cqrs: stream 'account-1' is at version 5, expected exactly(3)");
}

TEST(InMemoryEventStoreTest, MetricsCountAppendsRetriesConflictsAndDeliveries) {
  ManualClock clock;
  InMemoryEventStore store(clock);
  const std::vector<NewEvent> batch{event("A", "{}", "a"), event("B", "{}", "b")};
  store.append("s", ExpectedVersion::no_stream(), batch);
  store.append("s", ExpectedVersion::no_stream(), batch);
  EXPECT_THROW(store.append("s", ExpectedVersion::no_stream(), std::vector{event("C")}),
               WrongExpectedVersion);
  int calls = 0;
  Subscription failing = store.subscribe_all(0, [&](const RecordedEvent&) {
    if (++calls == 2) throw std::runtime_error("boom");
  });
  Subscription counting = store.subscribe_all(0, [](const RecordedEvent&) {});
  const EventStoreMetrics m = store.metrics();
  EXPECT_EQ(m.appends, 1U);
  EXPECT_EQ(m.events_appended, 2U);
  EXPECT_EQ(m.idempotent_retries, 1U);
  EXPECT_EQ(m.conflicts, 1U);
  EXPECT_EQ(m.events_delivered, 3U) << "1 by the failing subscription, 2 by the other";
  EXPECT_EQ(m.handler_failures, 1U);
  EXPECT_EQ(m.subscriptions, 1U) << "the failing subscription ended";
  counting.unsubscribe();
  EXPECT_EQ(store.metrics().subscriptions, 0U);
}

TEST(InMemoryEventStoreTest, CountersAreExportedToAMetricsRegistry) {
  InMemoryEventStore store;
  MetricsRegistry registry;
  Subscription exported =
      register_event_store_metrics(registry, "bank", [&] { return store.metrics(); });
  store.append("s", ExpectedVersion::any(), std::vector{event("A"), event("B")});
  const std::string page = registry.render();
  EXPECT_NE(page.find(R"(keel_cqrs_events_total{event="appended",store="bank"} 2)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find(R"(keel_cqrs_appends_total{outcome="written",store="bank"} 1)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find(R"(keel_cqrs_subscriptions{store="bank"} 0)"), std::string::npos) << page;
  exported.unsubscribe();
  EXPECT_EQ(registry.render().find("keel_cqrs_appends_total{"), std::string::npos);
}

// Regression: a forked child inherited its parent's generator and drew the same event ids,
// so the parent's next append to a shared SQLite file failed on the unique event_id.
TEST(EventIdTest, AForkedChildDrawsOtherIdsThanItsParent) {
  (void)internal::new_event_id();  // the parent's generator is in use before the fork
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    const std::string id = internal::new_event_id();
    const bool written =
        ::write(pipe_fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
    ::_exit(written ? 0 : 1);
  }
  std::string child_id(36, '\0');
  ASSERT_EQ(::read(pipe_fds[0], child_id.data(), child_id.size()), 36);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(internal::new_event_id(), child_id);
}

TEST(InMemoryEventStoreTest, DeeplyNestedJsonIsValidData) {
  InMemoryEventStore store;
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  const std::vector<NewEvent> events{{.type = "Nested", .data = deep}};
  EXPECT_EQ(store.append("s-1", ExpectedVersion::any(), events).version, 1U);
}

TEST(InMemoryEventStoreTest, ASubscriptionMayOutliveItsStore) {
  Subscription subscription;
  {
    InMemoryEventStore store;
    subscription = store.subscribe_all(0, [](const RecordedEvent&) {});
  }
  subscription.unsubscribe();
  EXPECT_FALSE(subscription.active());
}

}  // namespace
}  // namespace keel::cqrs
