#include "keel/saga/saga_log.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "keel/saga/saga_log_conformance.h"

namespace keel::saga {
namespace {

using testing::SagaLogCase;
using testing::SagaLogConformanceTest;
using testing::SagaLogPair;

INSTANTIATE_TEST_SUITE_P(Memory, SagaLogConformanceTest,
                         ::testing::Values(SagaLogCase{
                             "memory",
                             [] { return SagaLogPair{std::make_shared<InMemorySagaLog>(), nullptr}; }}),
                         testing::saga_log_case_name);

SagaRecord at(SagaEvent event, int step = -1) {
  SagaRecord r;
  r.saga_id = "s";
  r.saga_name = "order";
  r.event = event;
  r.step = step;
  r.context = {{"n", step}};
  return r;
}

TEST(SagaReplay, FoldsTheRecordsIntoTheState) {
  std::vector<SagaRecord> records = {at(SagaEvent::started),
                                     at(SagaEvent::step_started, 0),
                                     at(SagaEvent::step_completed, 0),
                                     at(SagaEvent::step_started, 1),
                                     at(SagaEvent::step_failed, 1),
                                     at(SagaEvent::compensation_started, 0)};
  records[4].error = "declined";
  records[4].step_name = "charge";
  records[4].may_have_effect = true;
  const SagaState state = replay(records);
  EXPECT_EQ(state.saga_id, "s");
  EXPECT_EQ(state.saga_name, "order");
  ASSERT_EQ(state.steps.size(), 2u);
  EXPECT_TRUE(state.steps[0].completed);
  EXPECT_TRUE(state.steps[0].compensation_started);
  EXPECT_FALSE(state.steps[0].compensation_completed);
  EXPECT_TRUE(state.steps[1].failed);
  EXPECT_TRUE(state.steps[1].may_have_effect);
  EXPECT_TRUE(state.compensating);
  EXPECT_EQ(state.failed_step, "charge");
  EXPECT_EQ(state.error, "declined");
  EXPECT_EQ(state.context.at("n").as_int64(), 0);  // the last record's
  EXPECT_FALSE(state.status.has_value());
}

TEST(SagaReplay, ANewRunOfAStepForgetsItsEarlierFailure) {
  std::vector<SagaRecord> records = {at(SagaEvent::started), at(SagaEvent::step_started, 0),
                                     at(SagaEvent::step_failed, 0),
                                     at(SagaEvent::step_started, 0)};
  const SagaState state = replay(records);
  EXPECT_TRUE(state.steps[0].started);
  EXPECT_FALSE(state.steps[0].failed);  // in flight again: its effect is unknown
}

TEST(SagaReplay, RefusesHistoriesThatDoNotBeginWithStarted) {
  EXPECT_THROW(replay({}), std::invalid_argument);
  EXPECT_THROW(replay({at(SagaEvent::step_started, 0)}), std::invalid_argument);
}

TEST(SagaLogText, NamesAndContextsRoundTrip) {
  for (int i = 0; i <= static_cast<int>(SagaEvent::finished); ++i) {
    const auto event = static_cast<SagaEvent>(i);
    EXPECT_EQ(saga_event_from_string(to_string(event)), event);
  }
  EXPECT_THROW(saga_event_from_string("exploded"), std::invalid_argument);
  EXPECT_EQ(saga_status_from_string("compensated"), SagaStatus::compensated);
  EXPECT_THROW(saga_status_from_string("done"), std::invalid_argument);
  const Context context{{"a", 1}, {"b", {{"c", "d"}}}};
  EXPECT_EQ(context_from_json(context_to_json(context)), context);
  EXPECT_THROW(context_from_json("[1,2]"), std::invalid_argument);
  EXPECT_THROW(context_from_json("{\"a\":"), std::invalid_argument);
}

}  // namespace
}  // namespace keel::saga
