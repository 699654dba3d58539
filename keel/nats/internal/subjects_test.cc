// The mapping from keel patterns to NATS subjects: exact where NATS can express the pattern,
// widened (and filtered locally) where '#' needs it.
#include "keel/nats/internal/subjects.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keel::nats::internal {
namespace {

using Subjects = std::vector<std::string>;

TEST(SubjectsTest, StarAndGreaterThanMapDirectly) {
  for (const char* pattern : {"orders.created", "orders.*", "orders.>", "*.created.>", "a"}) {
    const SubjectPlan plan = subjects_for(pattern);
    EXPECT_EQ(plan.subjects, Subjects{pattern}) << pattern;
    EXPECT_FALSE(plan.filter_locally) << pattern;
  }
}

TEST(SubjectsTest, TrailingHashAlsoSubscribesToThePrefixItself) {
  const SubjectPlan plan = subjects_for("orders.#");
  EXPECT_EQ(plan.subjects, (Subjects{"orders", "orders.>"}));
  EXPECT_FALSE(plan.filter_locally) << "orders and orders.> are exactly what orders.# matches";
  EXPECT_EQ(subjects_for("orders.*.#.#").subjects, (Subjects{"orders.*", "orders.*.>"}));
}

TEST(SubjectsTest, HashFollowedByTokensWidensAndFiltersLocally) {
  const SubjectPlan leading = subjects_for("#.eu");
  EXPECT_EQ(leading.subjects, Subjects{">"});
  EXPECT_TRUE(leading.filter_locally);

  const SubjectPlan inner = subjects_for("orders.#.eu");
  EXPECT_EQ(inner.subjects, Subjects{"orders.>"}) << "orders.#.eu needs at least 'orders.eu'";
  EXPECT_TRUE(inner.filter_locally);
}

TEST(SubjectsTest, LoneHashIsEverything) {
  const SubjectPlan plan = subjects_for("#");
  EXPECT_EQ(plan.subjects, Subjects{">"});
  EXPECT_FALSE(plan.filter_locally);
}

TEST(SubjectsTest, EscapedNamesKeepLettersDigitsAndDashAndStayDistinct) {
  EXPECT_EQ(escape_name("orders-2"), "orders-2");
  EXPECT_EQ(escape_name("orders.*"), "orders_2E_2A");
  EXPECT_NE(escape_name("a_b"), escape_name("a/b"));
  EXPECT_EQ(escape_name(""), "_");
}

TEST(SubjectsTest, FirstTokenIsTheStreamKey) {
  EXPECT_EQ(first_token("orders.created.eu"), "orders");
  EXPECT_EQ(first_token("orders"), "orders");
}

}  // namespace
}  // namespace keel::nats::internal
