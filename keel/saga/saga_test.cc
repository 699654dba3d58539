#include "keel/saga/saga.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/core/clock.h"
#include "keel/pubsub/event_bus.h"
#include "keel/saga/dying_log_test.h"
#include "keel/saga/saga_log.h"

namespace keel::saga {
namespace {

using ::testing::ElementsAre;
using namespace std::chrono_literals;

// Records what the steps did, in order, as "reserve", "undo:reserve", ...
struct Journal {
  std::vector<std::string> calls;
  Action step(std::string name) {
    return [this, name](Context& c) {
      calls.push_back(name);
      c[name] = true;
    };
  }
  Action fail(std::string name, std::string error = "boom") {
    return [this, name, error](Context&) {
      calls.push_back(name);
      throw std::runtime_error(error);
    };
  }
  Action undo(std::string name) {
    return [this, name](Context&) { calls.push_back(fmt::format("undo:{}", name)); };
  }
};

class SagaTest : public ::testing::Test {
 protected:
  SagaOptions options() {
    return SagaOptions{.clock = &clock_,
                       .sleeper = [this](Duration d) {
                         sleeps_.push_back(d);
                         clock_.advance(d);
                       },
                       .random = [] { return 0.5; }};
  }
  ManualClock clock_;
  std::vector<Duration> sleeps_;
  Journal j_;
};

TEST_F(SagaTest, TheIssueExampleRunsAsWritten) {
  const Action reserve = [](Context& c) { c["reservation_id"] = "R-1"; };
  const Action release = [](Context& c) { c.erase("reservation_id"); };
  const Action charge = [](Context& c) { c["charged"] = c.at("amount").as_double(); };
  const Action refund = [](Context& c) { c.erase("charged"); };
  const Action confirm = [](Context&) {};
  Saga order_saga("order", {
                               {"reserve_inventory", reserve, release},
                               {"charge_payment", charge, refund},
                               {"send_confirmation", confirm, no_op},
                           });
  const SagaResult result = order_saga.execute({{"product_id", "A1"}, {"amount", 49.99}});
  EXPECT_EQ(result.status, SagaStatus::completed);
  EXPECT_THAT(result.completed_steps,
              ElementsAre("reserve_inventory", "charge_payment", "send_confirmation"));
  EXPECT_TRUE(result.compensated_steps.empty());
  EXPECT_TRUE(result.failed_step.empty());
  EXPECT_EQ(result.context.at("reservation_id").as_string(), "R-1");
  EXPECT_EQ(result.context.at("charged").as_double(), 49.99);
  EXPECT_EQ(result.saga_id.size(), 32u);
}

TEST_F(SagaTest, AFailingStepCompensatesTheCompletedOnesInReverse) {
  Saga saga("order",
            {{"a", j_.step("a"), j_.undo("a")},
             {"b", j_.step("b"), j_.undo("b")},
             {"c", j_.fail("c", "card declined"), j_.undo("c")},
             {"d", j_.step("d"), j_.undo("d")}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_EQ(result.failed_step, "c");
  EXPECT_EQ(result.error, "card declined");
  EXPECT_THAT(j_.calls, ElementsAre("a", "b", "c", "undo:b", "undo:a"));
  EXPECT_THAT(result.completed_steps, ElementsAre("a", "b"));
  EXPECT_THAT(result.compensated_steps, ElementsAre("b", "a"));
  EXPECT_TRUE(result.unfinished_steps.empty());
  // Steps see the context as the previous ones left it; compensations too.
  EXPECT_TRUE(result.context.at("a").as_bool());
  EXPECT_TRUE(result.context.at("b").as_bool());
}

TEST_F(SagaTest, AFailingFirstStepEndsCompensatedWithNothingToUndo) {
  Saga saga("order", {{"a", j_.fail("a"), j_.undo("a")}, {"b", j_.step("b"), j_.undo("b")}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_EQ(result.failed_step, "a");
  EXPECT_THAT(j_.calls, ElementsAre("a"));
  EXPECT_TRUE(result.compensated_steps.empty());
}

TEST_F(SagaTest, AStepThatMayHaveHadAnEffectIsCompensatedFirst) {
  Saga saga("order",
            {{"a", j_.step("a"), j_.undo("a")},
             {"pay", j_.fail("pay", "reply lost"), j_.undo("pay"),
              StepOptions{.compensate_on_failure = true}}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_THAT(j_.calls, ElementsAre("a", "pay", "undo:pay", "undo:a"));
  EXPECT_THAT(result.compensated_steps, ElementsAre("pay", "a"));
}

TEST_F(SagaTest, ActionsAreRetriedWithBackoffOnTheInjectedSleeper) {
  int calls = 0;
  Saga saga("order",
            {{"flaky",
              [&](Context&) {
                if (++calls < 3) throw std::runtime_error("503");
              },
              no_op,
              StepOptions{.retry = {.initial = 1s, .max_attempts = 3, .jitter = Jitter::none}}}},
            options());
  const TimePoint before = clock_.now();
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::completed);
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(sleeps_, ElementsAre(Duration(1s), Duration(2s)));
  EXPECT_EQ(clock_.now() - before, 3s);
}

TEST_F(SagaTest, CompensationsAreRetriedThreeTimesFromAHundredMillisecondsByDefault) {
  int attempts = 0;
  Saga saga("order",
            {{"a", j_.step("a"),
              [&](Context&) {
                if (++attempts < 3) throw std::runtime_error("timeout");
              }},
             {"b", j_.fail("b"), no_op}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_EQ(attempts, 3);
  // Full jitter with a random source of 0.5: half of 100 ms, then half of 200 ms.
  EXPECT_THAT(sleeps_, ElementsAre(Duration(50ms), Duration(100ms)));
}

TEST_F(SagaTest, ACompensationThatNeverSucceedsEndsFailedAndTheOthersStillRun) {
  Saga saga("order",
            {{"a", j_.step("a"), j_.undo("a")},
             {"b", j_.step("b"), j_.fail("undo:b", "refund service down")},
             {"c", j_.step("c"), j_.undo("c")},
             {"d", j_.fail("d"), no_op}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::failed);
  EXPECT_EQ(result.failed_step, "d");
  EXPECT_THAT(j_.calls, ElementsAre("a", "b", "c", "d", "undo:c", "undo:b", "undo:b", "undo:b",
                                    "undo:a"));
  EXPECT_THAT(result.compensated_steps, ElementsAre("c", "a"));
  EXPECT_THAT(result.unfinished_steps, ElementsAre("b"));
}

TEST_F(SagaTest, AfterThePivotTheSagaOnlyMovesForward) {
  int shipping_attempts = 0;
  Saga saga("order",
            {{"reserve", j_.step("reserve"), j_.undo("reserve")},
             {"charge", j_.step("charge"), j_.undo("charge"), StepOptions{.pivot = true}},
             {"ship",
              [&](Context&) {
                ++shipping_attempts;
                throw std::runtime_error("carrier down");
              },
              j_.undo("ship"), StepOptions{.retry = {.initial = 1s, .max_attempts = 4}}}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::failed);
  EXPECT_EQ(shipping_attempts, 4);
  EXPECT_EQ(result.failed_step, "ship");
  EXPECT_THAT(result.unfinished_steps, ElementsAre("ship"));
  EXPECT_TRUE(result.compensated_steps.empty());
  EXPECT_THAT(j_.calls, ElementsAre("reserve", "charge"));  // nothing undone
}

TEST_F(SagaTest, AFailureBeforeThePivotStillCompensates) {
  Saga saga("order",
            {{"reserve", j_.step("reserve"), j_.undo("reserve")},
             {"charge", j_.fail("charge"), j_.undo("charge"), StepOptions{.pivot = true}},
             {"ship", j_.step("ship"), no_op}},
            options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_THAT(j_.calls, ElementsAre("reserve", "charge", "undo:reserve"));
}

TEST_F(SagaTest, AnAttemptThatOverrunsItsTimeoutFailsAndIsCompensated) {
  std::optional<TimePoint> seen_deadline;
  Saga saga("order",
            {{"a", j_.step("a"), j_.undo("a")},
             {"slow",
              [&](Context&) {
                seen_deadline = current_step()->deadline;
                clock_.advance(3s);  // the remote call took 3 s
              },
              j_.undo("slow"), StepOptions{.timeout = 2s}}},
            options());
  const TimePoint start = clock_.now();
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_EQ(result.failed_step, "slow");
  EXPECT_THAT(result.error, ::testing::HasSubstr("timed out"));
  ASSERT_TRUE(seen_deadline.has_value());
  EXPECT_EQ(*seen_deadline, start + 2s);
  // It returned late, so its effect may be there: compensated first.
  EXPECT_THAT(j_.calls, ElementsAre("a", "undo:slow", "undo:a"));
}

TEST_F(SagaTest, StepsKnowTheirSagaIdAttemptAndPhase) {
  std::vector<std::string> seen;
  const auto note = [&](Context&) {
    const StepInfo* info = current_step();
    seen.push_back(fmt::format("{}/{}/{}/{}/{}", info->saga_id, info->saga_name, info->step,
                               info->attempt, info->compensating));
  };
  int calls = 0;
  Saga saga("order",
            {{"a", note, note},
             {"b",
              [&](Context& c) {
                note(c);
                if (++calls < 2) throw std::runtime_error("again");
                throw std::runtime_error("no");
              },
              no_op, StepOptions{.retry = {.max_attempts = 2}}}},
            options());
  EXPECT_EQ(current_step(), nullptr);
  const SagaResult result = saga.execute({}, "id-1");
  EXPECT_EQ(result.saga_id, "id-1");
  EXPECT_THAT(seen, ElementsAre("id-1/order/a/1/false", "id-1/order/b/1/false",
                                "id-1/order/b/2/false", "id-1/order/a/1/true"));
  EXPECT_EQ(current_step(), nullptr);
}

TEST_F(SagaTest, NonStandardExceptionsAreReportedToo) {
  Saga saga("order", {{"a", [](Context&) { throw 42; }, no_op}}, options());
  const SagaResult result = saga.execute();
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_FALSE(result.error.empty());
}

TEST_F(SagaTest, InvalidDefinitionsAreRefusedAtConstruction) {
  const auto make = [](std::string name, std::vector<SagaStep> steps) {
    Saga saga(std::move(name), std::move(steps));
  };
  EXPECT_THROW(make("order", {}), std::invalid_argument);
  EXPECT_THROW(make("", {{"a", no_op, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("or.der", {{"a", no_op, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("or der", {{"a", no_op, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("order", {{"", no_op, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("order", {{"a", no_op, no_op}, {"a", no_op, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("order", {{"a", Action{}, no_op}}), std::invalid_argument);
  EXPECT_THROW(make("order", {{"a", no_op, Action{}}}), std::invalid_argument);
  EXPECT_THROW(make("order", {{"a", no_op, no_op, StepOptions{.timeout = Duration::zero()}}}),
               std::invalid_argument);
  EXPECT_THROW(make("order", {{"a", no_op, no_op, StepOptions{.retry = {.max_attempts = -1}}}}),
               std::invalid_argument);
  try {
    make("order", {{"a", no_op, no_op}, {"a", no_op, no_op}});
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("two steps are named 'a'"));
  }
}

TEST_F(SagaTest, EveryStateChangeIsLoggedBeforeTheNextAction) {
  InMemorySagaLog log;
  SagaOptions o = options();
  o.log = &log;
  std::vector<std::size_t> log_sizes;  // what the log held when each action started
  const auto id = std::string("s-1");
  const auto watch = [&](Context&) { log_sizes.push_back(log.history(id).size()); };
  Saga saga("order",
            {{"a", watch, watch},
             {"b",
              [&](Context& c) {
                watch(c);
                throw std::runtime_error("no");
              },
              no_op}},
            o);
  saga.execute({{"k", 1}}, id);
  // started, a:started | a:completed, b:started | b:failed, undo a:started
  EXPECT_THAT(log_sizes, ElementsAre(2u, 4u, 6u));
  std::vector<std::string> events;
  for (const SagaRecord& r : log.history(id)) events.emplace_back(to_string(r.event));
  EXPECT_THAT(events, ElementsAre("started", "step_started", "step_completed", "step_started",
                                  "step_failed", "compensation_started",
                                  "compensation_completed", "finished"));
  EXPECT_EQ(log.history(id).back().status, SagaStatus::compensated);
  EXPECT_EQ(log.history(id).back().step_name, "b");
  EXPECT_EQ(log.history(id).front().context.at("k").as_int64(), 1);
  EXPECT_TRUE(log.unfinished().empty());
  EXPECT_THROW(saga.execute({}, id), std::invalid_argument);  // an id is used once
}

TEST_F(SagaTest, ALogThatFailsStopsTheSagaAndLetsGoOfItForRecovery) {
  testing::DyingLog log;  // its disk fills up after 3 appends
  log.die_at(3);
  SagaOptions o = options();
  o.log = &log;
  Saga saga("order", {{"a", j_.step("a"), j_.undo("a")}, {"b", j_.step("b"), j_.undo("b")}}, o);
  EXPECT_THROW(saga.execute({}, "s"), std::runtime_error);
  EXPECT_THAT(j_.calls, ElementsAre("a"));  // b never ran: its step_started could not be written
  EXPECT_THAT(log.unfinished(), ElementsAre("s"));
  EXPECT_TRUE(log.try_claim("s"));
}

TEST_F(SagaTest, TransitionsArePublishedOnTheBus) {
  pubsub::EventBus bus;
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
  auto sub = bus.subscribe("saga.order.#", [&](const pubsub::Message& m) {
    topics.push_back(m.topic);
    payloads.push_back(m.payload);
  });
  SagaOptions o = options();
  o.bus = &bus;
  Saga saga("order", {{"a", j_.step("a"), j_.undo("a")}, {"b", j_.fail("b", "no"), no_op}}, o);
  saga.execute({}, "s-9");
  EXPECT_THAT(topics, ElementsAre("saga.order.started", "saga.order.step_started",
                                  "saga.order.step_completed", "saga.order.step_started",
                                  "saga.order.step_failed", "saga.order.compensation_started",
                                  "saga.order.compensation_completed", "saga.order.compensated"));
  EXPECT_THAT(payloads[4], ::testing::HasSubstr(R"("step":"b")"));
  EXPECT_THAT(payloads[4], ::testing::HasSubstr(R"("error":"no")"));
  EXPECT_THAT(payloads[7], ::testing::HasSubstr(R"("status":"compensated")"));
  EXPECT_THAT(payloads[0], ::testing::HasSubstr(R"("saga_id":"s-9")"));
}

TEST_F(SagaTest, ABusThatRefusesEventsDoesNotStopTheSaga) {
  pubsub::EventBus bus;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> received{0};
  // The worker blocks on the first event and the queue holds one more: the rest are refused.
  auto sub = bus.subscribe(
      "saga.#",
      [&](const pubsub::Message&) {
        released.wait();
        ++received;
      },
      {.delivery = pubsub::Delivery::asynchronous,
       .queue_capacity = 1,
       .overflow = pubsub::OverflowPolicy::fail});
  SagaOptions o = options();
  o.bus = &bus;
  Saga saga("order", {{"a", j_.step("a"), no_op}, {"b", j_.step("b"), no_op}}, o);
  const SagaResult result = saga.execute();
  release.set_value();
  bus.flush();
  EXPECT_EQ(result.status, SagaStatus::completed);
  EXPECT_THAT(j_.calls, ElementsAre("a", "b"));
  EXPECT_LT(received.load(), 6);  // six events were published; some were refused
}

TEST(SagaIds, AreRandomHex) {
  const std::string a = new_saga_id();
  const std::string b = new_saga_id();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace keel::saga
