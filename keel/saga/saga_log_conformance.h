// The conformance suite of the saga::SagaLog port (test-only, not installed).
//
// Every SagaLog (InMemorySagaLog, keel::sqlite::SqliteSagaLog, keel::postgres::PostgresSagaLog)
// passes it. Instantiate it with a factory that gives each test a fresh, empty log and, for logs
// that many coordinators share, a second log object on the same storage (another owner):
//
//   INSTANTIATE_TEST_SUITE_P(Memory, SagaLogConformanceTest, ::testing::Values(SagaLogCase{
//       "memory", [] { auto log = std::make_shared<InMemorySagaLog>();
//                      return SagaLogPair{log, nullptr}; }}), saga_log_case_name);
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/saga/coordinator.h"
#include "keel/saga/saga_log.h"

namespace keel::saga::testing {

struct SagaLogPair {
  std::shared_ptr<SagaLog> log;
  std::shared_ptr<SagaLog> peer;  // same storage, another owner; nullptr when not shared
};

struct SagaLogCase {
  std::string name;
  std::function<SagaLogPair()> make;
};

inline std::string saga_log_case_name(const ::testing::TestParamInfo<SagaLogCase>& info) {
  return info.param.name;
}

inline void PrintTo(const SagaLogCase& log_case, std::ostream* os) { *os << log_case.name; }

class SagaLogConformanceTest : public ::testing::TestWithParam<SagaLogCase> {
 protected:
  void SetUp() override { logs_ = GetParam().make(); }
  SagaLog& log() { return *logs_.log; }

  static SagaRecord record(const std::string& id, SagaEvent event, int step = -1) {
    SagaRecord r;
    r.saga_id = id;
    r.saga_name = "order";
    r.event = event;
    r.step = step;
    if (step >= 0) r.step_name = fmt::format("step{}", step);
    r.context = {{"id", id}, {"step", step}};
    r.at = WallTime{std::chrono::seconds{1767225600}};
    return r;
  }
  void start(const std::string& id) { log().append(record(id, SagaEvent::started)); }
  void finish(const std::string& id, SagaStatus status) {
    SagaRecord r = record(id, SagaEvent::finished);
    r.status = status;
    log().append(r);
  }

  SagaLogPair logs_;
};

TEST_P(SagaLogConformanceTest, HistoryReturnsEveryFieldInAppendOrder) {
  start("s1");
  SagaRecord failed = record("s1", SagaEvent::step_failed, 1);
  failed.attempt = 3;
  failed.error = "card declined: \"insufficient funds\"";
  failed.may_have_effect = true;
  failed.context = {{"amount", 49.99}, {"nested", {{"ids", {1, 2, 3}}}}, {"text", "é \n"}};
  log().append(record("s1", SagaEvent::step_started, 0));
  log().append(record("s1", SagaEvent::step_completed, 0));
  log().append(record("s1", SagaEvent::step_started, 1));
  log().append(failed);
  finish("s1", SagaStatus::compensated);

  const std::vector<SagaRecord> history = log().history("s1");
  ASSERT_EQ(history.size(), 6u);
  EXPECT_EQ(history[0].event, SagaEvent::started);
  EXPECT_EQ(history[1].event, SagaEvent::step_started);
  EXPECT_EQ(history[2].event, SagaEvent::step_completed);
  EXPECT_EQ(history[3].event, SagaEvent::step_started);
  const SagaRecord& read = history[4];
  EXPECT_EQ(read.saga_id, "s1");
  EXPECT_EQ(read.saga_name, "order");
  EXPECT_EQ(read.event, SagaEvent::step_failed);
  EXPECT_EQ(read.step, 1);
  EXPECT_EQ(read.step_name, "step1");
  EXPECT_EQ(read.attempt, 3);
  EXPECT_EQ(read.error, failed.error);
  EXPECT_TRUE(read.may_have_effect);
  EXPECT_EQ(read.context, failed.context);
  EXPECT_EQ(read.at, failed.at);
  EXPECT_FALSE(read.status.has_value());
  EXPECT_EQ(history[5].status, SagaStatus::compensated);
  EXPECT_EQ(history[5].step, -1);
  EXPECT_TRUE(log().history("nope").empty());
}

TEST_P(SagaLogConformanceTest, AStartedIdCannotStartAgain) {
  start("s1");
  EXPECT_THROW(start("s1"), std::invalid_argument);
  finish("s1", SagaStatus::completed);
  EXPECT_THROW(start("s1"), std::invalid_argument);
  EXPECT_EQ(log().history("s1").size(), 2u);
}

TEST_P(SagaLogConformanceTest, RecordsOfAnUnknownSagaAreRefused) {
  EXPECT_THROW(log().append(record("ghost", SagaEvent::step_started, 0)), std::logic_error);
  EXPECT_TRUE(log().history("ghost").empty());
  EXPECT_TRUE(log().unfinished().empty());
}

TEST_P(SagaLogConformanceTest, UnfinishedAndFailedListSagasOldestFirst) {
  start("b");
  start("a");
  start("c");
  start("d");
  EXPECT_EQ(log().unfinished(), (std::vector<std::string>{"b", "a", "c", "d"}));
  finish("a", SagaStatus::completed);
  finish("c", SagaStatus::failed);
  finish("b", SagaStatus::failed);
  EXPECT_EQ(log().unfinished(), (std::vector<std::string>{"d"}));
  EXPECT_EQ(log().failed(), (std::vector<std::string>{"b", "c"}));
}

TEST_P(SagaLogConformanceTest, ASagaRunningHereCannotBeClaimedUntilReleasedOrFinished) {
  start("s1");
  EXPECT_FALSE(log().try_claim("s1"));  // held by the run that started it
  log().release("s1");
  EXPECT_TRUE(log().try_claim("s1"));
  EXPECT_FALSE(log().try_claim("s1"));
  finish("s1", SagaStatus::failed);
  EXPECT_TRUE(log().try_claim("s1"));  // a failed saga may be resumed
  EXPECT_FALSE(log().try_claim("unknown"));
}

TEST_P(SagaLogConformanceTest, OnlyTheHolderWrites) {
  start("s1");
  log().release("s1");
  // Released: nobody may write until someone claims it again.
  EXPECT_THROW(log().append(record("s1", SagaEvent::step_started, 0)), std::logic_error);
  ASSERT_TRUE(log().try_claim("s1"));
  log().append(record("s1", SagaEvent::step_started, 0));
  finish("s1", SagaStatus::failed);
  EXPECT_THROW(log().append(record("s1", SagaEvent::step_started, 1)), std::logic_error);
  EXPECT_EQ(log().history("s1").size(), 3u);
}

TEST_P(SagaLogConformanceTest, AResumedSagaIsUnfinishedAgainUntilItFinishes) {
  start("s1");
  finish("s1", SagaStatus::failed);
  EXPECT_EQ(log().failed(), (std::vector<std::string>{"s1"}));
  ASSERT_TRUE(log().try_claim("s1"));
  log().append(record("s1", SagaEvent::compensation_started, 0));
  // A coordinator dying here must leave the saga to recover(), not hidden as failed.
  EXPECT_EQ(log().unfinished(), (std::vector<std::string>{"s1"}));
  EXPECT_TRUE(log().failed().empty());
  EXPECT_FALSE(replay(log().history("s1")).status.has_value());
  finish("s1", SagaStatus::compensated);
  EXPECT_TRUE(log().unfinished().empty());
}

TEST_P(SagaLogConformanceTest, AnotherOwnerCannotClaimAHeldSaga) {
  if (!logs_.peer) GTEST_SKIP() << "this log is not shared between owners";
  SagaLog& peer = *logs_.peer;
  start("s1");
  EXPECT_FALSE(peer.try_claim("s1"));
  EXPECT_EQ(peer.unfinished(), (std::vector<std::string>{"s1"}));
  log().release("s1");
  EXPECT_TRUE(peer.try_claim("s1"));
  EXPECT_FALSE(log().try_claim("s1"));
  EXPECT_THROW(log().append(record("s1", SagaEvent::step_started, 0)), std::logic_error);
  peer.append(record("s1", SagaEvent::step_started, 0));
  EXPECT_EQ(log().history("s1").size(), 2u);
  SagaRecord done = record("s1", SagaEvent::finished);
  done.status = SagaStatus::compensated;
  peer.append(done);
  EXPECT_TRUE(log().unfinished().empty());
}

TEST_P(SagaLogConformanceTest, ConcurrentSagasKeepTheirOwnHistories) {
  constexpr int kThreads = 4;
  constexpr int kSagas = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int s = 0; s < kSagas; ++s) {
        const std::string id = fmt::format("t{}-{}", t, s);
        start(id);
        log().append(record(id, SagaEvent::step_started, 0));
        log().append(record(id, SagaEvent::step_completed, 0));
        finish(id, SagaStatus::completed);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(log().unfinished().empty());
  for (int t = 0; t < kThreads; ++t) {
    for (int s = 0; s < kSagas; ++s) {
      const auto history = log().history(fmt::format("t{}-{}", t, s));
      ASSERT_EQ(history.size(), 4u);
      EXPECT_EQ(history.back().event, SagaEvent::finished);
    }
  }
}

// The coordinator on this log: a saga interrupted by a failing log is finished by recover().
TEST_P(SagaLogConformanceTest, ACoordinatorRecoversWhatTheLogHolds) {
  int reserved = 0;
  SagaCoordinator coordinator(log());
  coordinator.define("order", {{"step0", [&](Context& c) { ++reserved; c["r"] = 1; },
                                [&](Context&) { --reserved; }},
                               {"step1", [](Context&) {}, no_op}});
  // A run stopped after its first step: write what a dying coordinator would have written.
  start("s1");
  log().append(record("s1", SagaEvent::step_started, 0));
  log().append(record("s1", SagaEvent::step_completed, 0));
  log().release("s1");
  reserved = 1;

  const RecoveryReport report = coordinator.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, SagaStatus::compensated);
  EXPECT_EQ(report.finished[0].compensated_steps, (std::vector<std::string>{"step0"}));
  EXPECT_EQ(reserved, 0);
  EXPECT_TRUE(log().unfinished().empty());
  EXPECT_TRUE(coordinator.recover().finished.empty());
}

}  // namespace keel::saga::testing
