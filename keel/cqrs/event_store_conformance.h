// The conformance suite of the cqrs::EventStore port (test-only, not installed).
//
// Every EventStore (InMemoryEventStore, keel::sqlite::SqliteEventStore,
// keel::postgres::PostgresEventStore) must keep the rules written in event_store.h. Instantiate
// the suite with a factory that builds an empty store on a ManualClock (which stamps
// recorded_at):
//
//   INSTANTIATE_TEST_SUITE_P(Memory, EventStoreConformanceTest,
//       ::testing::Values(EventStoreCase{"memory", [](ManualClock& clock) {
//           return std::make_unique<InMemoryEventStore>(clock); }}),
//       event_store_case_name);
//
// The factory is called once per test and must give it an empty store (a new file, a new
// database). EventStoreConcurrencyTest, in the same header, hammers one store from several
// threads; instantiate it in a test executable of its own where TSan can run it.
//
// Subscriptions: every keel store delivers the events stored before subscribe_all() on the
// subscribing thread before it returns, and live events on the appending thread before append()
// returns, so the single-threaded cases check deliveries right after the call.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "keel/core/clock.h"
#include "keel/cqrs/event_store.h"

namespace keel::cqrs::testing {

struct EventStoreCase {
  std::string name;
  std::function<std::unique_ptr<EventStore>(ManualClock&)> make;
};

inline std::string event_store_case_name(const ::testing::TestParamInfo<EventStoreCase>& info) {
  return info.param.name;
}

inline void PrintTo(const EventStoreCase& store_case, std::ostream* os) { *os << store_case.name; }

inline NewEvent event(std::string type, std::string data = "{}",
                      std::optional<std::string> id = std::nullopt) {
  return NewEvent{.type = std::move(type), .data = std::move(data), .id = std::move(id)};
}

inline std::vector<std::uint64_t> positions_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::uint64_t> positions;
  for (const RecordedEvent& e : events) positions.push_back(e.position);
  return positions;
}

inline std::vector<std::uint64_t> versions_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::uint64_t> versions;
  for (const RecordedEvent& e : events) versions.push_back(e.version);
  return versions;
}

inline std::vector<std::string> types_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> types;
  for (const RecordedEvent& e : events) types.push_back(e.type);
  return types;
}

// 1, 2, ..., n.
inline std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> sequence;
  for (std::uint64_t i = 1; i <= n; ++i) sequence.push_back(i);
  return sequence;
}

class EventStoreTestBase : public ::testing::TestWithParam<EventStoreCase> {
 protected:
  void SetUp() override { store_ = GetParam().make(clock_); }

  AppendResult append(const std::string& stream, ExpectedVersion expected,
                      const std::vector<NewEvent>& events) {
    return store_->append(stream, expected, std::span<const NewEvent>(events));
  }

  ManualClock clock_;
  std::unique_ptr<EventStore> store_;
};

class EventStoreConformanceTest : public EventStoreTestBase {
 protected:
  // Runs `append_call`, which must throw WrongExpectedVersion for `stream` at `actual`.
  void expect_conflict(const std::function<void()>& append_call, const std::string& stream,
                       ExpectedVersion expected, std::uint64_t actual) {
    try {
      append_call();
      ADD_FAILURE() << "expected WrongExpectedVersion for " << stream << " at " << actual;
    } catch (const WrongExpectedVersion& e) {
      EXPECT_EQ(e.stream(), stream);
      EXPECT_EQ(e.expected(), expected) << e.what();
      EXPECT_EQ(e.actual(), actual) << e.what();
    }
  }

  // Everything in the store, to check that a refused append wrote nothing.
  std::vector<RecordedEvent> everything() { return store_->read_all(); }
};

using std::chrono::seconds;

TEST_P(EventStoreConformanceTest, TheFirstEventIsVersionOneAtPositionOne) {
  clock_.advance(seconds(5));
  const NewEvent opened{.type = "AccountOpened",
                        .data = R"({"owner":"Ada","limit":100})",
                        .metadata = R"({"correlation_id":"c-1"})",
                        .id = "7f1d2a36-0000-4000-8000-000000000001"};
  const AppendResult result =
      store_->append("account-1", ExpectedVersion::no_stream(), std::span(&opened, 1));
  EXPECT_EQ(result, (AppendResult{.version = 1, .position = 1}));
  EXPECT_EQ(store_->stream_version("account-1"), 1U);

  const std::vector<RecordedEvent> events = store_->read_stream("account-1");
  ASSERT_EQ(events.size(), 1U);
  const RecordedEvent expected{.stream = "account-1",
                               .version = 1,
                               .position = 1,
                               .id = "7f1d2a36-0000-4000-8000-000000000001",
                               .type = "AccountOpened",
                               .data = R"({"owner":"Ada","limit":100})",
                               .metadata = R"({"correlation_id":"c-1"})",
                               .recorded_at = clock_.wall_now()};
  EXPECT_EQ(events[0], expected) << "every field is stored as given; recorded_at is the clock's";
  EXPECT_EQ(store_->read_all(), events);
}

TEST_P(EventStoreConformanceTest, TheStoreGivesAnIdToAnEventWithout) {
  append("s", ExpectedVersion::any(), {event("A"), event("B")});
  const std::vector<RecordedEvent> events = store_->read_stream("s");
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].id.size(), 36U) << "a UUID: " << events[0].id;
  EXPECT_NE(events[0].id, events[1].id);
  EXPECT_EQ(events[0].metadata, "");
}

TEST_P(EventStoreConformanceTest, VersionsCountPerStreamAndPositionsCountAcrossStreams) {
  EXPECT_EQ(append("a", ExpectedVersion::any(), {event("A1"), event("A2")}),
            (AppendResult{.version = 2, .position = 2}));
  EXPECT_EQ(append("b", ExpectedVersion::any(), {event("B1")}),
            (AppendResult{.version = 1, .position = 3}));
  EXPECT_EQ(append("a", ExpectedVersion::any(), {event("A3")}),
            (AppendResult{.version = 3, .position = 4}));

  const std::vector<RecordedEvent> all = store_->read_all();
  EXPECT_EQ(positions_of(all), one_to(4));
  EXPECT_EQ(types_of(all), (std::vector<std::string>{"A1", "A2", "B1", "A3"}));
  EXPECT_EQ(versions_of(all), (std::vector<std::uint64_t>{1, 2, 1, 3}));
  EXPECT_EQ(types_of(store_->read_stream("a")), (std::vector<std::string>{"A1", "A2", "A3"}));
  EXPECT_EQ(positions_of(store_->read_stream("a")), (std::vector<std::uint64_t>{1, 2, 4}));
  EXPECT_EQ(store_->stream_version("a"), 3U);
  EXPECT_EQ(store_->stream_version("b"), 1U);
}

TEST_P(EventStoreConformanceTest, AMissingStreamHasVersionZeroAndNoEvents) {
  append("present", ExpectedVersion::any(), {event("A")});
  EXPECT_EQ(store_->stream_version("absent"), 0U);
  EXPECT_TRUE(store_->read_stream("absent").empty());
  EXPECT_TRUE(store_->read_stream("presen").empty()) << "stream names match exactly";
}

TEST_P(EventStoreConformanceTest, ReadStreamStartsAtAVersionAndStopsAtMaxCount) {
  append("s", ExpectedVersion::any(), {event("E1"), event("E2"), event("E3"), event("E4")});
  append("other", ExpectedVersion::any(), {event("X")});
  append("s", ExpectedVersion::any(), {event("E5")});
  EXPECT_EQ(versions_of(store_->read_stream("s", 3)), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(versions_of(store_->read_stream("s", 2, 2)), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(versions_of(store_->read_stream("s", 5)), (std::vector<std::uint64_t>{5}));
  EXPECT_TRUE(store_->read_stream("s", 6).empty());
  EXPECT_TRUE(store_->read_stream("s", 1, 0).empty());
  EXPECT_EQ(versions_of(store_->read_stream("s", 0)), one_to(5)) << "version 0: from the start";
}

TEST_P(EventStoreConformanceTest, ReadAllStartsAfterAPositionAndStopsAtMaxCount) {
  for (int i = 0; i < 6; ++i)
    append(i % 2 == 0 ? "even" : "odd", ExpectedVersion::any(), {event("E")});
  EXPECT_EQ(positions_of(store_->read_all(2)), (std::vector<std::uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(positions_of(store_->read_all(2, 3)), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_TRUE(store_->read_all(6).empty());
  EXPECT_TRUE(store_->read_all(60).empty());
  EXPECT_TRUE(store_->read_all(0, 0).empty());
}

TEST_P(EventStoreConformanceTest, AnyIsAlwaysAccepted) {
  EXPECT_EQ(append("s", ExpectedVersion::any(), {event("A")}).version, 1U);
  EXPECT_EQ(append("s", ExpectedVersion::any(), {event("B")}).version, 2U);
}

TEST_P(EventStoreConformanceTest, NoStreamIsAcceptedOnlyBeforeTheFirstEvent) {
  EXPECT_EQ(append("s", ExpectedVersion::no_stream(), {event("A")}).version, 1U);
  expect_conflict([&] { append("s", ExpectedVersion::no_stream(), {event("B")}); }, "s",
                  ExpectedVersion::no_stream(), 1);
  EXPECT_EQ(types_of(everything()), (std::vector<std::string>{"A"})) << "a conflict writes nothing";
}

TEST_P(EventStoreConformanceTest, StreamExistsIsAcceptedOnlyAfterTheFirstEvent) {
  expect_conflict([&] { append("s", ExpectedVersion::stream_exists(), {event("A")}); }, "s",
                  ExpectedVersion::stream_exists(), 0);
  EXPECT_TRUE(everything().empty());
  append("s", ExpectedVersion::any(), {event("A")});
  EXPECT_EQ(append("s", ExpectedVersion::stream_exists(), {event("B")}).version, 2U);
}

TEST_P(EventStoreConformanceTest, ExactlyIsAcceptedOnlyAtThatVersion) {
  EXPECT_EQ(ExpectedVersion::exactly(0), ExpectedVersion::no_stream());
  EXPECT_EQ(append("s", ExpectedVersion::exactly(0), {event("A")}).version, 1U);
  expect_conflict([&] { append("s", ExpectedVersion::exactly(0), {event("B")}); }, "s",
                  ExpectedVersion::no_stream(), 1);
  EXPECT_EQ(append("s", ExpectedVersion::exactly(1), {event("B"), event("C")}).version, 3U);
  expect_conflict([&] { append("s", ExpectedVersion::exactly(2), {event("D")}); }, "s",
                  ExpectedVersion::exactly(2), 3);
  expect_conflict([&] { append("s", ExpectedVersion::exactly(4), {event("D")}); }, "s",
                  ExpectedVersion::exactly(4), 3);
  expect_conflict([&] { append("t", ExpectedVersion::exactly(1), {event("D")}); }, "t",
                  ExpectedVersion::exactly(1), 0);
  EXPECT_EQ(types_of(everything()), (std::vector<std::string>{"A", "B", "C"}));
}

TEST_P(EventStoreConformanceTest, ABatchIsWrittenWholeWithConsecutiveVersionsAndPositions) {
  append("other", ExpectedVersion::any(), {event("X")});
  std::vector<NewEvent> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(event("E", std::to_string(i)));
  EXPECT_EQ(append("s", ExpectedVersion::no_stream(), batch),
            (AppendResult{.version = 50, .position = 51}));
  const std::vector<RecordedEvent> events = store_->read_stream("s");
  ASSERT_EQ(events.size(), 50U);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].version, i + 1);
    EXPECT_EQ(events[i].position, i + 2);
    EXPECT_EQ(events[i].data, std::to_string(i));
  }
}

TEST_P(EventStoreConformanceTest, ABatchWithOneInvalidEventWritesNothing) {
  append("s", ExpectedVersion::any(), {event("A")});
  EXPECT_THROW(
      append("s", ExpectedVersion::any(), {event("B"), event("C", "{not json"), event("D")}),
      std::invalid_argument);
  EXPECT_EQ(types_of(everything()), (std::vector<std::string>{"A"}));
  EXPECT_EQ(append("s", ExpectedVersion::exactly(1), {event("B")}),
            (AppendResult{.version = 2, .position = 2}))
      << "the refused batch used no version and no position";
}

TEST_P(EventStoreConformanceTest, InvalidInputThrowsInvalidArgument) {
  const auto refused = [&](const std::string& stream, const NewEvent& bad) {
    EXPECT_THROW(append(stream, ExpectedVersion::any(), {bad}), std::invalid_argument)
        << "stream '" << stream << "', type '" << bad.type << "', data '" << bad.data << "'";
  };
  refused("", event("A"));
  refused("s", event(""));
  refused("s", event("A", ""));
  refused("s", event("A", "{\"a\":"));
  refused("s", event("A", "{} trailing"));
  refused("s", event("A", "not json"));
  refused("s", NewEvent{.type = "A", .data = "{}", .metadata = "{broken"});
  refused("s", event("A", "{}", ""));
  refused(std::string("s\0t", 3), event("A"));
  refused("s", event(std::string("A\0B", 3)));
  EXPECT_THROW(store_->append("", ExpectedVersion::any(), {}), std::invalid_argument)
      << "an empty stream name is refused even with no events";
  EXPECT_THROW(store_->subscribe_all(0, nullptr), std::invalid_argument);
  EXPECT_TRUE(everything().empty());

  // Any JSON value is valid data, and metadata may be empty or JSON.
  append("s", ExpectedVersion::any(),
         {event("A", "42"), event("B", "[1,2]"), event("C", "\"text\""), event("D", "null"),
          NewEvent{.type = "E", .data = " { } ", .metadata = R"({"user":"u-1"})"}});
  EXPECT_EQ(store_->stream_version("s"), 5U);
  EXPECT_EQ(store_->read_stream("s", 5)[0].data, " { } ") << "data is kept byte for byte";
}

TEST_P(EventStoreConformanceTest, AnEmptyBatchWritesNothingButChecksTheExpectedVersion) {
  EXPECT_EQ(append("s", ExpectedVersion::no_stream(), {}),
            (AppendResult{.version = 0, .position = 0}));
  expect_conflict([&] { append("s", ExpectedVersion::stream_exists(), {}); }, "s",
                  ExpectedVersion::stream_exists(), 0);
  append("s", ExpectedVersion::any(), {event("A")});
  EXPECT_EQ(append("s", ExpectedVersion::exactly(1), {}).version, 1U);
  expect_conflict([&] { append("s", ExpectedVersion::no_stream(), {}); }, "s",
                  ExpectedVersion::no_stream(), 1);
  EXPECT_EQ(positions_of(everything()), one_to(1));
}

TEST_P(EventStoreConformanceTest, ARetryWithTheSameIdsReturnsTheOriginalResultAndWritesNothing) {
  const std::vector<NewEvent> batch{event("Deposited", R"({"amount":10})", "dep-1"),
                                    event("Deposited", R"({"amount":20})", "dep-2")};
  append("other", ExpectedVersion::any(), {event("X")});
  const AppendResult original = append("s", ExpectedVersion::no_stream(), batch);
  EXPECT_EQ(original, (AppendResult{.version = 2, .position = 3}));
  append("s", ExpectedVersion::any(), {event("Later")});

  EXPECT_EQ(append("s", ExpectedVersion::no_stream(), batch), original)
      << "the response to the first append was lost; the client sends it again";
  EXPECT_EQ(append("s", ExpectedVersion::any(), batch), original);
  EXPECT_EQ(store_->stream_version("s"), 3U);
  EXPECT_EQ(positions_of(everything()), one_to(4));

  const std::vector<NewEvent> second{event("Deposited", R"({"amount":5})", "dep-3")};
  const AppendResult at_version_3 = append("s", ExpectedVersion::exactly(3), second);
  EXPECT_EQ(append("s", ExpectedVersion::exactly(3), second), at_version_3);
  EXPECT_EQ(append("s", ExpectedVersion::stream_exists(), second), at_version_3);
}

TEST_P(EventStoreConformanceTest, ARetryAtAVersionItsExpectationRefusesIsAConflict) {
  const std::vector<NewEvent> batch{event("A", "{}", "id-a")};
  append("s", ExpectedVersion::no_stream(), batch);  // written at version 1
  append("s", ExpectedVersion::any(), {event("B")});
  expect_conflict([&] { append("s", ExpectedVersion::stream_exists(), batch); }, "s",
                  ExpectedVersion::stream_exists(), 2);
  expect_conflict([&] { append("s", ExpectedVersion::exactly(1), batch); }, "s",
                  ExpectedVersion::exactly(1), 2);
  EXPECT_EQ(positions_of(everything()), one_to(2));
}

TEST_P(EventStoreConformanceTest, ReusingAnIdForAnotherEventThrows) {
  append("s", ExpectedVersion::any(), {event("A", R"({"n":1})", "id-1"), event("B", "{}", "id-2")});
  const auto reused = [&](const std::string& stream, const std::vector<NewEvent>& batch) {
    EXPECT_THROW(append(stream, ExpectedVersion::any(), batch), DuplicateEventId) << stream;
  };
  reused("s", {event("A", R"({"n":2})", "id-1")});                            // other data
  reused("s", {event("Other", R"({"n":1})", "id-1")});                        // other type
  reused("t", {event("A", R"({"n":1})", "id-1")});                            // other stream
  reused("s", {event("B", "{}", "id-2"), event("A", R"({"n":1})", "id-1")});  // other order
  reused("s", {event("A", R"({"n":1})", "id-1"), event("C", "{}", "id-3")});  // stored + new
  reused("s", {event("C"), event("B", "{}", "id-2")});                        // new + stored
  reused("u", {event("C", "{}", "id-9"), event("D", "{}", "id-9")});          // twice in one batch
  NewEvent other_metadata = event("A", R"({"n":1})", "id-1");
  other_metadata.metadata = R"({"m":1})";
  reused("s", {other_metadata});
  EXPECT_EQ(positions_of(everything()), one_to(2));
  try {
    append("s", ExpectedVersion::any(), {event("Z", "{}", "id-2")});
    ADD_FAILURE() << "id-2 was reused";
  } catch (const DuplicateEventId& e) {
    EXPECT_EQ(e.id(), "id-2");
    const std::invalid_argument& as_invalid_argument = e;  // bad input, as the rules say
    EXPECT_NE(std::string(as_invalid_argument.what()).find("id-2"), std::string::npos);
  }
}

TEST_P(EventStoreConformanceTest, ARetryOfPartOfABatchReturnsItsOwnLastEvent) {
  const std::vector<NewEvent> batch{event("A", "{}", "a"), event("B", "{}", "b"),
                                    event("C", "{}", "c")};
  append("s", ExpectedVersion::no_stream(), batch);
  EXPECT_EQ(append("s", ExpectedVersion::no_stream(), {batch[0], batch[1]}),
            (AppendResult{.version = 2, .position = 2}));
  EXPECT_EQ(append("s", ExpectedVersion::exactly(1), {batch[1], batch[2]}),
            (AppendResult{.version = 3, .position = 3}));
  EXPECT_EQ(positions_of(everything()), one_to(3));
}

TEST_P(EventStoreConformanceTest, SubscribeAllCatchesUpThenDeliversLiveEventsInOrder) {
  append("a", ExpectedVersion::any(), {event("A1"), event("A2")});
  append("b", ExpectedVersion::any(), {event("B1")});
  std::vector<RecordedEvent> seen;
  Subscription subscription =
      store_->subscribe_all(1, [&](const RecordedEvent& e) { seen.push_back(e); });
  EXPECT_EQ(positions_of(seen), (std::vector<std::uint64_t>{2, 3}))
      << "the stored events after position 1, before subscribe_all returns";

  append("b", ExpectedVersion::any(), {event("B2"), event("B3")});
  append("a", ExpectedVersion::any(), {event("A3")});
  EXPECT_EQ(positions_of(seen), (std::vector<std::uint64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(types_of(seen), (std::vector<std::string>{"A2", "B1", "B2", "B3", "A3"}));
  EXPECT_EQ(seen.back(), store_->read_all(5)[0]) << "the event as read_all returns it";

  std::vector<std::uint64_t> from_the_end;
  Subscription live_only =
      store_->subscribe_all(6, [&](const RecordedEvent& e) { from_the_end.push_back(e.position); });
  EXPECT_TRUE(from_the_end.empty());
  append("c", ExpectedVersion::any(), {event("C1")});
  EXPECT_EQ(from_the_end, (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(positions_of(seen).back(), 7U) << "both subscriptions get each event";
}

TEST_P(EventStoreConformanceTest, UnsubscribeStopsDelivery) {
  std::vector<std::uint64_t> seen;
  Subscription subscription =
      store_->subscribe_all(0, [&](const RecordedEvent& e) { seen.push_back(e.position); });
  append("s", ExpectedVersion::any(), {event("A")});
  subscription.unsubscribe();
  append("s", ExpectedVersion::any(), {event("B")});
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{1}));

  Subscription self_ending;
  std::vector<std::uint64_t> until_d;
  self_ending = store_->subscribe_all(0, [&](const RecordedEvent& e) {
    until_d.push_back(e.position);
    if (e.type == "D") self_ending.unsubscribe();  // from inside its own handler
  });
  append("s", ExpectedVersion::any(), {event("C"), event("D"), event("E")});
  append("s", ExpectedVersion::any(), {event("F")});
  EXPECT_EQ(until_d, one_to(4)) << "nothing after the event whose handler unsubscribed";
}

TEST_P(EventStoreConformanceTest, AHandlerMayUseTheStoreBecauseNoLockIsHeldAcrossIt) {
  std::vector<std::string> seen;
  Subscription subscription = store_->subscribe_all(0, [&](const RecordedEvent& e) {
    seen.push_back(e.type);
    EXPECT_EQ(store_->read_all(e.position - 1, 1).size(), 1U);
    if (e.type == "OrderPlaced") {
      // A process manager reacting with an append of its own: delivered after this call.
      append("shipping", ExpectedVersion::any(), {event("ShipmentRequested")});
      EXPECT_EQ(seen.back(), "OrderPlaced") << "not delivered from inside this handler";
    }
  });
  append("order-1", ExpectedVersion::any(), {event("OrderPlaced"), event("OrderPaid")});
  EXPECT_EQ(seen, (std::vector<std::string>{"OrderPlaced", "OrderPaid", "ShipmentRequested"}));
}

TEST_P(EventStoreConformanceTest, AHandlerThatThrowsEndsOnlyItsOwnSubscription) {
  std::vector<std::uint64_t> failing_seen;
  std::vector<std::uint64_t> healthy_seen;
  Subscription failing = store_->subscribe_all(0, [&](const RecordedEvent& e) {
    failing_seen.push_back(e.position);
    if (e.type == "Poison") throw std::runtime_error("cannot handle this one");
  });
  Subscription healthy =
      store_->subscribe_all(0, [&](const RecordedEvent& e) { healthy_seen.push_back(e.position); });
  EXPECT_NO_THROW(append("s", ExpectedVersion::any(), {event("A"), event("Poison"), event("C")}))
      << "the append committed: a handler's failure is not the appender's";
  append("s", ExpectedVersion::any(), {event("D")});
  EXPECT_EQ(failing_seen, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(healthy_seen, one_to(4));
  EXPECT_EQ(store_->stream_version("s"), 4U);
}

// Concurrent appenders and subscribers on one store. Each appender thread writes batches to a
// stream of its own and read-modify-writes a shared counter stream with exactly(), retrying on
// conflict; a reader checks that read_all never shows a position before the ones below it.
class EventStoreConcurrencyTest : public EventStoreTestBase {};

TEST_P(EventStoreConcurrencyTest, ConcurrentAppendersKeepVersionsPositionsAndDeliveryExact) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 40;
  std::mutex mutex;
  std::vector<std::uint64_t> early;  // subscribed before any append
  std::vector<std::uint64_t> late;   // subscribed while appends run
  Subscription early_subscription = store_->subscribe_all(0, [&](const RecordedEvent& e) {
    std::lock_guard lock(mutex);
    early.push_back(e.position);
  });
  Subscription late_subscription;

  std::atomic<int> conflicts{0};
  std::atomic<bool> done{false};
  std::atomic<bool> gap_seen{false};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      for (const RecordedEvent& e : store_->read_all(last, 64)) {
        if (e.position != last + 1) gap_seen = true;
        last = e.position;
      }
    }
  });
  std::vector<std::thread> appenders;
  for (int t = 0; t < kThreads; ++t) {
    appenders.emplace_back([&, t] {
      const std::string own = "own-" + std::to_string(t);
      for (int round = 0; round < kRounds; ++round) {
        const std::size_t size = static_cast<std::size_t>(round % 3 + 1);
        append(own, ExpectedVersion::exactly(store_->stream_version(own)),
               std::vector<NewEvent>(size, event("Own")));
        for (;;) {
          const std::uint64_t version = store_->stream_version("counter");
          try {
            append("counter", ExpectedVersion::exactly(version), {event("Incremented")});
            break;
          } catch (const WrongExpectedVersion&) {
            ++conflicts;
          }
        }
        if (t == 0 && round == kRounds / 2) {
          late_subscription = store_->subscribe_all(0, [&](const RecordedEvent& e) {
            std::lock_guard lock(mutex);
            late.push_back(e.position);
          });
        }
      }
    });
  }
  for (std::thread& appender : appenders) appender.join();
  done = true;
  reader.join();

  const std::vector<RecordedEvent> all = store_->read_all();
  std::uint64_t per_thread = 0;
  for (int round = 0; round < kRounds; ++round)
    per_thread += static_cast<std::uint64_t>(round % 3 + 2);
  ASSERT_EQ(all.size(), kThreads * per_thread);
  EXPECT_EQ(positions_of(all), one_to(all.size())) << "positions are 1..n with no gap";
  EXPECT_FALSE(gap_seen) << "read_all showed a position before one below it";
  std::map<std::string, std::uint64_t> versions;
  for (const RecordedEvent& e : all) {
    EXPECT_EQ(e.version, ++versions[e.stream]) << "versions of " << e.stream << " are 1..n";
  }
  EXPECT_EQ(store_->stream_version("counter"), std::uint64_t{kThreads * kRounds})
      << "every increment went in once; " << conflicts << " conflicts were retried";

  // Every append has returned. An append either delivered its events or left them to the
  // thread delivering at the time, which returns only once caught up: all is delivered.
  std::lock_guard lock(mutex);
  EXPECT_EQ(early, one_to(all.size())) << "each event once, in position order";
  EXPECT_EQ(late, one_to(all.size())) << "catch-up then live, without a gap or a repeat";
}

}  // namespace keel::cqrs::testing
