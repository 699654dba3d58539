#include "keel/saga/coordinator.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/core/clock.h"
#include "keel/saga/dying_log_test.h"
#include "keel/saga/saga_log.h"

namespace keel::saga {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using testing::DyingLog;

// The services the order saga talks to, with idempotent operations keyed by saga id (what the
// docs ask of compensations), counting every effect so that a double effect shows.
struct Services {
  std::set<std::string> reserved, charged;
  std::map<std::string, int> reserve_calls, release_calls, charge_calls, refund_calls;
  bool payment_fails = false;

  std::vector<SagaStep> order_steps(bool pivot_on_charge = false) {
    const auto id = [] { return std::string(current_step()->saga_id); };
    return {
        {"reserve", [this, id](Context& c) { ++reserve_calls[id()]; reserved.insert(id()); c["r"] = 1; },
         [this, id](Context&) { ++release_calls[id()]; reserved.erase(id()); }},
        {"charge",
         [this, id](Context&) {
           ++charge_calls[id()];
           if (payment_fails) throw std::runtime_error("card declined");
           charged.insert(id());
         },
         [this, id](Context&) { ++refund_calls[id()]; charged.erase(id()); },
         StepOptions{.pivot = pivot_on_charge}},
        {"confirm", no_op, no_op},
    };
  }
};

TEST(SagaCoordinator, RunsDefinedSagasByName) {
  InMemorySagaLog log;
  Services services;
  SagaCoordinator coordinator(log);
  coordinator.define("order", services.order_steps());
  const SagaResult result = coordinator.execute("order", {{"product", "A1"}}, "o-1");
  EXPECT_EQ(result.status, SagaStatus::completed);
  EXPECT_EQ(log.history("o-1").size(), 8u);
  EXPECT_THROW(coordinator.execute("nope"), std::invalid_argument);
  EXPECT_THROW(coordinator.define("order", services.order_steps()), std::invalid_argument);
  EXPECT_THROW(coordinator.define("bad name", services.order_steps()), std::invalid_argument);
}

// The in-process twin of the fork-and-kill test (tests/integration/saga_crash_sqlite_test.cc):
// the coordinator dies at every append in turn; a new one recovers; the end state is consistent.
TEST(SagaCoordinator, RecoveryAfterADeathAtEveryPointLeavesAConsistentState) {
  for (const bool payment_fails : {false, true}) {
    for (int crash_at = 0;; ++crash_at) {
      SCOPED_TRACE(fmt::format("payment_fails={} crash_at={}", payment_fails, crash_at));
      DyingLog log;
      Services services;
      services.payment_fails = payment_fails;
      bool crashed = false;
      {
        SagaCoordinator first(log);
        first.define("order", services.order_steps());
        log.die_at(crash_at);
        try {
          first.execute("order", {}, "o-1");
        } catch (const std::runtime_error&) {
          crashed = true;
        }
      }
      log.heal();
      SagaCoordinator second(log);
      second.define("order", services.order_steps());
      const RecoveryReport report = second.recover();
      EXPECT_THAT(log.unfinished(), IsEmpty());
      if (!crashed) {
        EXPECT_THAT(report.finished, IsEmpty());
      }
      const std::vector<SagaRecord> history = log.history("o-1");
      const std::optional<SagaStatus> status =
          history.empty() ? std::nullopt : replay(history).status;
      if (status) {
        if (*status == SagaStatus::completed) {
          EXPECT_FALSE(payment_fails);
          EXPECT_TRUE(services.reserved.contains("o-1"));
          EXPECT_TRUE(services.charged.contains("o-1"));
        } else {
          EXPECT_EQ(*status, SagaStatus::compensated);
          EXPECT_FALSE(services.reserved.contains("o-1"));
          EXPECT_FALSE(services.charged.contains("o-1"));
        }
      } else {
        // Died before `started` was written: nothing ran.
        EXPECT_TRUE(services.reserve_calls.empty());
      }
      // A compensation runs again only when the coordinator died between doing it and logging it.
      EXPECT_LE(services.release_calls["o-1"], 2);
      EXPECT_LE(services.refund_calls["o-1"], 2);
      if (!crashed) break;
      ASSERT_LT(crash_at, 50);
    }
  }
}

TEST(SagaCoordinator, BackwardRecoveryCompensatesTheStepThatWasInFlight) {
  DyingLog log;
  Services services;
  SagaCoordinator first(log);
  first.define("order", services.order_steps());
  log.die_at(4);  // started, reserve started, reserve completed, charge started | charge completed
  EXPECT_THROW(first.execute("order", {}, "o-1"), std::runtime_error);
  EXPECT_TRUE(services.charged.contains("o-1"));  // charged, but the log does not know
  log.heal();

  SagaCoordinator second(log);
  second.define("order", services.order_steps());
  const RecoveryReport report = second.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  const SagaResult& result = report.finished[0];
  EXPECT_EQ(result.status, SagaStatus::compensated);
  EXPECT_EQ(result.failed_step, "charge");
  EXPECT_THAT(result.compensated_steps, ElementsAre("charge", "reserve"));
  EXPECT_TRUE(services.charged.empty());
  EXPECT_TRUE(services.reserved.empty());
}

TEST(SagaCoordinator, ASagaPastItsPivotRecoversForward) {
  DyingLog log;
  Services services;
  SagaCoordinator first(log);
  first.define("order", services.order_steps(/*pivot_on_charge=*/true));
  log.die_at(6);  // ... charge completed, confirm started | confirm completed
  EXPECT_THROW(first.execute("order", {}, "o-1"), std::runtime_error);
  log.heal();
  SagaCoordinator second(log);
  second.define("order", services.order_steps(true));
  const RecoveryReport report = second.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, SagaStatus::completed);
  EXPECT_THAT(report.finished[0].completed_steps, ElementsAre("reserve", "charge", "confirm"));
  EXPECT_TRUE(services.charged.contains("o-1"));
  EXPECT_EQ(services.refund_calls["o-1"], 0);
}

TEST(SagaCoordinator, ForwardRecoveryRunsTheInterruptedStepAgain) {
  DyingLog log;
  Services services;
  SagaOptions options{.recovery = Recovery::forward};
  SagaCoordinator first(log, options);
  first.define("order", services.order_steps());
  log.die_at(4);
  EXPECT_THROW(first.execute("order", {}, "o-1"), std::runtime_error);
  log.heal();
  SagaCoordinator second(log, options);
  second.define("order", services.order_steps());
  const RecoveryReport report = second.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, SagaStatus::completed);
  EXPECT_EQ(services.charge_calls["o-1"], 2);  // ran again: it must be idempotent
  EXPECT_EQ(services.reserve_calls["o-1"], 1);
}

TEST(SagaCoordinator, RecoverSkipsSagasHeldElsewhereAndReportsUnknownNames) {
  InMemorySagaLog log;
  SagaRecord started{.saga_id = "held", .saga_name = "order", .event = SagaEvent::started};
  log.append(started);  // held by its (living) runner
  started.saga_id = "alien";
  started.saga_name = "refund";
  log.append(started);
  log.release("alien");
  SagaCoordinator coordinator(log);
  coordinator.define("order", {{"a", no_op, no_op}});
  const RecoveryReport report = coordinator.recover();
  EXPECT_THAT(report.skipped, ElementsAre("held"));
  EXPECT_THAT(report.unknown, ElementsAre("alien"));
  EXPECT_THAT(report.finished, IsEmpty());
  EXPECT_THAT(log.unfinished(), ElementsAre("held", "alien"));
  EXPECT_TRUE(log.try_claim("alien"));  // let go again
}

TEST(SagaCoordinator, ResumeFinishesAFailedCompensationOnceTheCauseIsFixed) {
  InMemorySagaLog log;
  bool refund_service_up = false;
  int refunds = 0;
  SagaCoordinator coordinator(
      log, SagaOptions{.sleeper = [](Duration) {}});
  coordinator.define("order",
                     {{"charge", no_op,
                       [&](Context&) {
                         if (!refund_service_up) throw std::runtime_error("refund service down");
                         ++refunds;
                       }},
                      {"ship", [](Context&) { throw std::runtime_error("no stock"); }, no_op}});
  const SagaResult first = coordinator.execute("order", {}, "o-1");
  EXPECT_EQ(first.status, SagaStatus::failed);
  EXPECT_THAT(first.unfinished_steps, ElementsAre("charge"));
  EXPECT_THAT(log.failed(), ElementsAre("o-1"));
  EXPECT_THAT(coordinator.recover().finished, IsEmpty());  // failed is for a person, not recover

  refund_service_up = true;
  const SagaResult second = coordinator.resume("o-1");
  EXPECT_EQ(second.status, SagaStatus::compensated);
  EXPECT_THAT(second.compensated_steps, ElementsAre("charge"));
  EXPECT_THAT(second.unfinished_steps, IsEmpty());
  EXPECT_EQ(second.failed_step, "ship");
  EXPECT_EQ(refunds, 1);
  EXPECT_THAT(log.failed(), IsEmpty());
  EXPECT_THROW(coordinator.resume("o-1"), std::logic_error);  // already compensated
  EXPECT_THROW(coordinator.resume("nope"), std::invalid_argument);
}

TEST(SagaCoordinator, ResumeRetriesTheStepAfterThePivot) {
  InMemorySagaLog log;
  bool carrier_up = false;
  SagaCoordinator coordinator(log);
  coordinator.define("order",
                     {{"charge", no_op, no_op, StepOptions{.pivot = true}},
                      {"ship",
                       [&](Context&) {
                         if (!carrier_up) throw std::runtime_error("carrier down");
                       },
                       no_op}});
  EXPECT_EQ(coordinator.execute("order", {}, "o-1").status, SagaStatus::failed);
  carrier_up = true;
  const SagaResult resumed = coordinator.resume("o-1");
  EXPECT_EQ(resumed.status, SagaStatus::completed);
  EXPECT_THAT(resumed.completed_steps, ElementsAre("charge", "ship"));
  EXPECT_TRUE(resumed.failed_step.empty());
}


TEST(SagaCoordinator, AStepRerunByForwardRecoveryThatFailsIsStillCompensated) {
  // The charge was in flight when the coordinator died (it went through); run again by forward
  // recovery, it fails cleanly (declined): its earlier effect must still be refunded.
  DyingLog log;
  Services services;
  SagaOptions options{.recovery = Recovery::forward};
  SagaCoordinator first(log, options);
  first.define("order", services.order_steps());
  log.die_at(4);  // started, reserve started/completed, charge started | charge completed
  EXPECT_THROW(first.execute("order", {}, "o-1"), std::runtime_error);
  EXPECT_TRUE(services.charged.contains("o-1"));
  log.heal();
  services.payment_fails = true;
  SagaCoordinator second(log, options);
  second.define("order", services.order_steps());
  const RecoveryReport report = second.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, SagaStatus::compensated);
  EXPECT_THAT(report.finished[0].compensated_steps, ElementsAre("charge", "reserve"));
  EXPECT_TRUE(services.charged.empty());
  EXPECT_TRUE(services.reserved.empty());
}

TEST(SagaCoordinator, AFailureLoggedBeforeThePivotIsCompensatedEvenInForwardMode) {
  DyingLog log;
  Services services;
  services.payment_fails = true;
  SagaOptions options{.recovery = Recovery::forward};
  SagaCoordinator first(log, options);
  first.define("order", services.order_steps());
  log.die_at(5);  // ... charge started, charge failed | compensation started
  EXPECT_THROW(first.execute("order", {}, "o-1"), std::runtime_error);
  log.heal();
  services.payment_fails = false;  // would succeed now: forward would wrongly charge
  SagaCoordinator second(log, options);
  second.define("order", services.order_steps());
  const RecoveryReport report = second.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, SagaStatus::compensated);
  EXPECT_EQ(services.charge_calls["o-1"], 1);
  EXPECT_TRUE(services.reserved.empty());
}

TEST(SagaCoordinator, ASagaItCannotContinueDoesNotStopTheOthers) {
  InMemorySagaLog log;
  {
    SagaCoordinator old_version(log);
    old_version.define("order", {{"a", no_op, no_op}, {"b", no_op, no_op}, {"c", no_op, no_op}});
    SagaRecord r{.saga_id = "old", .saga_name = "order", .event = SagaEvent::started};
    log.append(r);
    r.event = SagaEvent::step_started;
    r.step = 2;
    r.step_name = "c";
    log.append(r);
    log.release("old");
    log.append({.saga_id = "fine", .saga_name = "order", .event = SagaEvent::started});
    log.release("fine");
  }
  SagaCoordinator coordinator(log);
  coordinator.define("order", {{"a", no_op, no_op}, {"b", no_op, no_op}});  // c was removed
  const RecoveryReport report = coordinator.recover();
  EXPECT_THAT(report.invalid, ElementsAre("old"));
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].saga_id, "fine");
  EXPECT_TRUE(log.try_claim("old"));  // left unclaimed for a person
}

TEST(SagaCoordinator, AClaimIsReleasedWhenTheSleeperThrows) {
  InMemorySagaLog log;
  SagaCoordinator coordinator(
      log, SagaOptions{.sleeper = [](Duration) { throw std::runtime_error("shutting down"); }});
  coordinator.define("order", {{"a", [](Context&) { throw std::runtime_error("no"); }, no_op,
                                StepOptions{.retry = {.max_attempts = 3}}}});
  EXPECT_THROW(coordinator.execute("order", {}, "o-1"), std::runtime_error);
  EXPECT_THAT(log.unfinished(), ElementsAre("o-1"));
  EXPECT_EQ(coordinator.recover().finished.size(), 1u);  // not stuck as held
}

}  // namespace
}  // namespace keel::saga
