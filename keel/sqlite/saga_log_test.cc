#include "keel/sqlite/saga_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "keel/saga/coordinator.h"
#include "keel/saga/saga_log_conformance.h"
#include "tests/support/temp_dir.h"

namespace keel::sqlite {
namespace {

using saga::testing::SagaLogCase;
using saga::testing::SagaLogConformanceTest;
using saga::testing::SagaLogPair;
using namespace std::chrono_literals;

// Each test gets a fresh file, opened by two owners. The temporary directory lives as long as
// the logs (a shared_ptr with a deleter that keeps it).
SagaLogPair two_owners() {
  auto dir = std::make_shared<keel::testing::TempDir>("keel-saga-log");
  const std::string path = (dir->path() / "sagas.db").string();
  auto a = new SqliteSagaLog(path, {.owner = "node-a"});
  auto b = new SqliteSagaLog(path, {.owner = "node-b"});
  return SagaLogPair{std::shared_ptr<saga::SagaLog>(a, [dir](saga::SagaLog* log) { delete log; }),
                     std::shared_ptr<saga::SagaLog>(b, [dir](saga::SagaLog* log) { delete log; })};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, SagaLogConformanceTest,
                         ::testing::Values(SagaLogCase{"sqlite", two_owners}),
                         saga::testing::saga_log_case_name);

saga::SagaRecord record(std::string id, saga::SagaEvent event, int step = -1) {
  saga::SagaRecord r;
  r.saga_id = std::move(id);
  r.saga_name = "order";
  r.event = event;
  r.step = step;
  return r;
}

class SqliteSagaLogTest : public ::testing::Test {
 protected:
  std::string path() const { return (dir_.path() / "sagas.db").string(); }
  keel::testing::TempDir dir_{"keel-saga-log"};
  ManualClock clock_;
};

TEST_F(SqliteSagaLogTest, AnotherOwnerTakesOverOnlyAfterTheLeaseLapses) {
  SqliteSagaLog a(path(), {.owner = "a", .lease = 10s, .clock = &clock_});
  SqliteSagaLog b(path(), {.owner = "b", .lease = 10s, .clock = &clock_});
  a.append(record("s", saga::SagaEvent::started));
  clock_.advance(9s);
  a.append(record("s", saga::SagaEvent::step_started, 0));  // renews the lease
  clock_.advance(9s);
  EXPECT_FALSE(b.try_claim("s"));
  clock_.advance(2s);  // 11 s since a's last append
  EXPECT_TRUE(b.try_claim("s"));
  // a was too slow: fenced off, it can no longer write to the saga.
  EXPECT_THROW(a.append(record("s", saga::SagaEvent::step_completed, 0)), std::logic_error);
  b.append(record("s", saga::SagaEvent::step_completed, 0));
  EXPECT_EQ(b.history("s").size(), 3u);
}

TEST_F(SqliteSagaLogTest, ARestartedOwnerTakesItsSagasBackAtOnce) {
  {
    SqliteSagaLog before(path(), {.owner = "node-a", .clock = &clock_});
    before.append(record("s", saga::SagaEvent::started));
  }  // the process died holding the saga
  SqliteSagaLog other(path(), {.owner = "node-b", .clock = &clock_});
  EXPECT_FALSE(other.try_claim("s"));
  SqliteSagaLog after(path(), {.owner = "node-a", .clock = &clock_});
  EXPECT_TRUE(after.try_claim("s"));
  EXPECT_THAT(after.unfinished(), ::testing::ElementsAre("s"));
}

TEST_F(SqliteSagaLogTest, TheLogSurvivesReopeningAndACoordinatorFinishesTheWork) {
  int released = 0;
  const std::vector<saga::SagaStep> steps = {
      {"reserve", saga::no_op, [&](saga::Context&) { ++released; }},
      {"charge", saga::no_op, saga::no_op}};
  {
    SqliteSagaLog log(path(), {.owner = "node"});
    log.append(record("s", saga::SagaEvent::started));
    log.append(record("s", saga::SagaEvent::step_started, 0));
    log.append(record("s", saga::SagaEvent::step_completed, 0));
  }
  SqliteSagaLog log(path(), {.owner = "node"});
  saga::SagaCoordinator coordinator(log);
  coordinator.define("order", steps);
  const saga::RecoveryReport report = coordinator.recover();
  ASSERT_EQ(report.finished.size(), 1u);
  EXPECT_EQ(report.finished[0].status, saga::SagaStatus::compensated);
  EXPECT_EQ(released, 1);
  EXPECT_TRUE(log.unfinished().empty());
}

TEST_F(SqliteSagaLogTest, BadOptionsAreRefused) {
  EXPECT_THROW(SqliteSagaLog(path(), {.lease = 0s}), std::invalid_argument);
  SqliteSagaLog log(path());
  EXPECT_FALSE(log.owner().empty());  // host:pid:random
  saga::SagaRecord finished = record("s", saga::SagaEvent::finished);
  finished.status = saga::SagaStatus::completed;
  EXPECT_THROW(log.append(finished), std::logic_error);  // never started
}

}  // namespace
}  // namespace keel::sqlite
