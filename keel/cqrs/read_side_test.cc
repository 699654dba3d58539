// Projections (ProjectionRunner) and the Outbox to keel::pubsub, on an InMemoryEventStore.
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/bank_account_test.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/outbox.h"
#include "keel/cqrs/projection.h"
#include "keel/pubsub/event_bus.h"
#include "keel/pubsub/topic.h"

namespace keel::cqrs {
namespace {

using testing::Account;
using testing::Balances;

class ReadSideTest : public ::testing::Test {
 protected:
  AppendResult deposit(const std::string& stream, std::int64_t amount) {
    auto account = accounts_.load<Account>(stream);
    if (!account.opened()) account.open("owner", 0);
    account.deposit(amount);
    return accounts_.save(account);
  }

  ManualClock clock_;
  InMemoryEventStore store_{clock_};
  Repository accounts_{store_};
};

TEST_F(ReadSideTest, AProjectionCatchesUpThenFollowsTheLog) {
  deposit("account-1", 10);
  deposit("account-2", 20);
  Balances balances;
  ProjectionRunner runner(store_, balances);
  EXPECT_FALSE(runner.running());
  runner.start();
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(balances.all(),
            (std::map<std::string, std::int64_t>{{"account-1", 10}, {"account-2", 20}}));
  const AppendResult written = deposit("account-1", 5);
  EXPECT_EQ(balances.all()["account-1"], 15) << "applied before the command returned";
  EXPECT_GE(runner.position(), written.position) << "how a caller reads its own write";
  EXPECT_EQ(runner.metrics().applied, 5U);
}

TEST_F(ReadSideTest, ARestartedProjectionResumesFromItsCheckpoint) {
  Balances balances;
  ProjectionRunner runner(store_, balances);
  runner.start();
  deposit("account-1", 10);
  runner.stop();
  deposit("account-1", 7);  // while stopped
  EXPECT_EQ(balances.all()["account-1"], 10);
  EXPECT_EQ(balances.checkpoint(), 2U);

  ProjectionRunner restarted(store_, balances);  // as after a restart of the process
  restarted.start();
  EXPECT_EQ(balances.all()["account-1"], 17);
  EXPECT_EQ(restarted.metrics().applied, 1U) << "only the event after the checkpoint";
}

TEST_F(ReadSideTest, ARebuildAppliesTheWholeLogAgainFromScratch) {
  Balances balances;
  ProjectionRunner runner(store_, balances);
  runner.start();
  deposit("account-1", 10);
  deposit("account-2", 20);
  const auto before = balances.all();
  runner.rebuild();
  EXPECT_EQ(balances.all(), before);
  EXPECT_EQ(runner.metrics().applied, 8U) << "4 events, twice";
  EXPECT_EQ(runner.metrics().rebuilds, 1U);
  deposit("account-2", 1);
  EXPECT_EQ(balances.all()["account-2"], 21) << "and follows the log again";
}

TEST_F(ReadSideTest, AProjectionThatFailsStopsBeforeTheEventAndResumesThere) {
  class Fussy final : public Projection {
   public:
    std::uint64_t checkpoint() override { return checkpoint_; }
    void apply(const RecordedEvent& event) override {
      if (event.type == "Deposited" && broken) throw std::runtime_error("bug in the projection");
      seen.push_back(event.position);
      checkpoint_ = event.position;
    }
    void reset() override { checkpoint_ = 0; }
    bool broken = true;
    std::vector<std::uint64_t> seen;

   private:
    std::uint64_t checkpoint_ = 0;
  } fussy;
  ProjectionRunner runner(store_, fussy);
  runner.start();
  deposit("account-1", 10);  // AccountOpened (1), Deposited (2)
  EXPECT_FALSE(runner.running());
  EXPECT_EQ(runner.metrics().failures, 1U);
  EXPECT_EQ(fussy.checkpoint(), 1U);
  fussy.broken = false;  // the bug is fixed
  runner.start();
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(fussy.seen, (std::vector<std::uint64_t>{1, 2})) << "nothing skipped, nothing twice";
}

class OutboxTest : public ReadSideTest {
 protected:
  OutboxTest() {
    subscription_ =
        bus_.subscribe("account.*", [&](const pubsub::Message& m) { received_.push_back(m); });
  }

  std::vector<std::string> received_ids() const {
    std::vector<std::string> ids;
    for (const pubsub::Message& m : received_) ids.push_back(header(m, "x-event-position"));
    return ids;
  }
  static std::string header(const pubsub::Message& m, const std::string& name) {
    for (const auto& [key, value] : m.headers) {
      if (key == name) return value;
    }
    return "";
  }

  pubsub::EventBus bus_;
  std::vector<pubsub::Message> received_;
  Subscription subscription_;
  InMemoryCheckpointStore checkpoints_;
};

TEST_F(OutboxTest, EventsArePublishedAsCategoryDotTypeWithTheirIdentity) {
  Outbox outbox(store_, bus_, checkpoints_);
  outbox.start();
  deposit("account-1", 25);
  ASSERT_EQ(received_.size(), 2U);
  const pubsub::Message& deposited = received_[1];
  EXPECT_EQ(deposited.topic, "account.Deposited");
  EXPECT_EQ(deposited.payload, R"({"amount":25})");
  const RecordedEvent stored = store_.read_all(1)[0];
  EXPECT_EQ(header(deposited, "x-event-id"), stored.id);
  EXPECT_EQ(header(deposited, "x-event-stream"), "account-1");
  EXPECT_EQ(header(deposited, "x-event-version"), "2");
  EXPECT_EQ(header(deposited, "x-event-position"), "2");
  EXPECT_EQ(checkpoints_.load("outbox"), 2U);
  EXPECT_EQ(outbox.metrics().published, 2U);

  EXPECT_EQ(outbox_topic(RecordedEvent{.stream = "order.eu-7", .type = "Paid now"}),
            "order_eu.Paid_now")
      << "characters a topic token cannot hold become '_'";
  EXPECT_EQ(outbox_topic(RecordedEvent{.stream = "inventory", .type = "Restocked"}),
            "inventory.Restocked");
  // Names too long for a topic still give a valid one, and distinct names distinct topics.
  const std::string long_a = outbox_topic(
      RecordedEvent{.stream = std::string(2000, 's'), .type = std::string(2000, 't').append("a")});
  const std::string long_b = outbox_topic(
      RecordedEvent{.stream = std::string(2000, 's'), .type = std::string(2000, 't').append("b")});
  EXPECT_NO_THROW(pubsub::validate_topic(long_a));
  EXPECT_LE(long_a.size(), 1024U);
  EXPECT_NE(long_a, long_b);
}

TEST_F(OutboxTest, EventsCommittedBeforeACrashArePublishedAtRestart) {
  {
    Outbox outbox(store_, bus_, checkpoints_);
    outbox.start();
    deposit("account-1", 1);  // positions 1, 2: published
    outbox.stop();            // the process dies here...
  }
  deposit("account-1", 2);  // ...after this append committed, before it was published
  EXPECT_EQ(received_.size(), 2U);

  Outbox restarted(store_, bus_, checkpoints_);
  restarted.start();
  EXPECT_EQ(received_ids(), (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(OutboxTest, ACrashBetweenPublishAndCheckpointPublishesAgain) {
  // A checkpoint store that fails once, as a process killed right after a publish would.
  class FailingOnce final : public CheckpointStore {
   public:
    explicit FailingOnce(CheckpointStore& inner) : inner_(inner) {}
    std::uint64_t load(std::string_view name) override { return inner_.load(name); }
    void save(std::string_view name, std::uint64_t position) override {
      if (position == 2 && !failed_) {
        failed_ = true;
        throw std::runtime_error("killed before the checkpoint was saved");
      }
      inner_.save(name, position);
    }

   private:
    CheckpointStore& inner_;
    bool failed_ = false;
  } failing(checkpoints_);
  Outbox outbox(store_, bus_, failing);
  outbox.start();
  deposit("account-1", 1);
  EXPECT_FALSE(outbox.running());
  EXPECT_EQ(outbox.metrics().failures, 0U) << "the publish itself went through";
  outbox.start();
  EXPECT_EQ(received_ids(), (std::vector<std::string>{"1", "2", "2"}))
      << "at least once: subscribers deduplicate by x-event-id";
  EXPECT_TRUE(outbox.running());
}

}  // namespace
}  // namespace keel::cqrs
