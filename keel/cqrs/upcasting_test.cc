// Upcasters: old event shapes read in the current shape by aggregates (Repository, also after
// a snapshot) and projections (ProjectionRunner), chains of versions, and upcasters that fail
// or break the rules. The SQL stores' inline read models are covered in their own tests.
#include "keel/cqrs/upcasting.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/bank_account_test.h"
#include "keel/cqrs/event_store.h"
#include "keel/cqrs/projection.h"

namespace keel::cqrs {
namespace {

using testing::Account;
using testing::Balances;

// Version 1 of the bank wrote deposits as "MoneyAdded" {"value": n}; today's code knows
// "Deposited" {"amount": n}.
Upcasters money_added_is_deposited() {
  Upcasters upcasters;
  upcasters.add("MoneyAdded", "Deposited", [](boost::json::value& data) {
    data = {{"amount", data.at("value")}};
  });
  return upcasters;
}

class UpcastingTest : public ::testing::Test {
 protected:
  void append(const std::string& stream, const std::string& type, const std::string& data) {
    const NewEvent event{.type = type, .data = data};
    store_.append(stream, ExpectedVersion::any(), std::span(&event, 1));
  }

  // account-1 as version 1 of the code wrote it: opened, then 10 added, then (version 2) 5
  // deposited.
  void write_old_and_new_events() {
    append("account-1", "AccountOpened", R"({"owner":"Ada","overdraft_limit":0})");
    append("account-1", "MoneyAdded", R"({"value":10})");
    append("account-1", "Deposited", R"({"amount":5})");
  }

  ManualClock clock_;
  InMemoryEventStore store_{clock_};
};

TEST_F(UpcastingTest, AnOldEventIsSeenInTheNewShapeByTheAggregateAndByAProjection) {
  write_old_and_new_events();
  const Upcasters upcasters = money_added_is_deposited();

  Repository without(store_);
  EXPECT_EQ(without.load<Account>("account-1").balance(), 5) << "the old event, unknown";
  Repository accounts(store_, {.upcasters = &upcasters});
  const auto account = accounts.load<Account>("account-1");
  EXPECT_EQ(account.balance(), 15);
  EXPECT_EQ(account.version(), 3U);

  Balances balances;
  ProjectionRunner runner(store_, balances, {.upcasters = &upcasters});
  runner.start();
  EXPECT_EQ(balances.all()["account-1"], 15) << "caught up, upcast";
  append("account-1", "MoneyAdded", R"({"value":1})");  // an old writer still running
  EXPECT_EQ(balances.all()["account-1"], 16) << "a live event, upcast";
  EXPECT_EQ(balances.checkpoint(), 4U) << "positions are the store's";

  const std::vector<RecordedEvent> stored = store_.read_stream("account-1");
  EXPECT_EQ(stored[1].type, "MoneyAdded") << "the log is never rewritten";
  EXPECT_EQ(stored[1].data, R"({"value":10})");
}

TEST_F(UpcastingTest, TheTailAfterASnapshotIsUpcastToo) {
  const Upcasters upcasters = money_added_is_deposited();
  InMemorySnapshotStore snapshots;
  Repository accounts(store_,
                      {.snapshots = &snapshots, .snapshot_every = 2, .upcasters = &upcasters});
  auto account = accounts.load<Account>("account-1");
  account.open("Ada", 0);
  account.deposit(7);
  accounts.save(account);  // snapshot at version 2
  append("account-1", "MoneyAdded", R"({"value":3})");

  const auto loaded = accounts.load<Account>("account-1");
  EXPECT_TRUE(loaded.restored());
  EXPECT_EQ(loaded.events_applied(), 1) << "only the tail after the snapshot";
  EXPECT_EQ(loaded.balance(), 10);
  EXPECT_EQ(accounts.metrics().snapshots_read, 1U);
}

TEST_F(UpcastingTest, AChainTakesAnEventThroughEveryVersion) {
  // v1 "DepositedV1" {"cents": n}  →  v2 "DepositedV2" {"money": {"cents": n, "currency"}}
  //                                →  v3 "Deposited" {"amount": whole units}
  Upcasters upcasters;
  upcasters
      .add("DepositedV1", "DepositedV2",
           [](boost::json::value& data) {
             data = {{"money", {{"cents", data.at("cents")}, {"currency", "EUR"}}}};
           })
      .add("DepositedV2", [](RecordedEvent event) {
        const boost::json::value data = boost::json::parse(event.data);
        const std::int64_t cents = data.at("money").at("cents").as_int64();
        event.type = "Deposited";
        event.data = boost::json::serialize(boost::json::value{{"amount", cents / 100}});
        event.metadata = R"({"upcast":true})";
        return event;
      });
  append("account-1", "AccountOpened", R"({"owner":"Ada","overdraft_limit":0})");
  append("account-1", "DepositedV1", R"({"cents":1200})");
  append("account-1", "DepositedV2", R"({"money":{"cents":300,"currency":"EUR"}})");
  append("account-1", "Deposited", R"({"amount":1})");

  Repository accounts(store_, {.upcasters = &upcasters});
  EXPECT_EQ(accounts.load<Account>("account-1").balance(), 16) << "12 + 3 + 1";

  const RecordedEvent v1 = store_.read_stream("account-1", 2, 1).at(0);
  const RecordedEvent latest = upcasters.upcast(v1);
  EXPECT_EQ(latest.type, "Deposited");
  EXPECT_EQ(latest.data, R"({"amount":12})");
  EXPECT_EQ(latest.metadata, R"({"upcast":true})");
  EXPECT_EQ(latest.position, v1.position);
  EXPECT_EQ(latest.version, v1.version);
  EXPECT_EQ(latest.id, v1.id);
  EXPECT_TRUE(upcasters.handles("DepositedV1"));
  EXPECT_FALSE(upcasters.handles("Deposited"));
  EXPECT_EQ(upcasters.upcast(store_.read_stream("account-1", 4, 1).at(0)).data, R"({"amount":1})")
      << "an event already current passes unchanged";
}

TEST_F(UpcastingTest, ARewriteThatKeepsTheTypeRunsOnceAndEndsTheChain) {
  Upcasters upcasters;
  int calls = 0;
  upcasters.add("Deposited", [&calls](RecordedEvent event) {
    ++calls;
    boost::json::value data = boost::json::parse(event.data);
    if (const auto* euros = data.as_object().if_contains("euros")) {
      data = {{"amount", *euros}};
      event.data = boost::json::serialize(data);
    }
    return event;
  });
  append("account-1", "AccountOpened", R"({"owner":"Ada","overdraft_limit":0})");
  append("account-1", "Deposited", R"({"euros":4})");
  append("account-1", "Deposited", R"({"amount":2})");
  Repository accounts(store_, {.upcasters = &upcasters});
  EXPECT_EQ(accounts.load<Account>("account-1").balance(), 6);
  EXPECT_EQ(calls, 2) << "once per Deposited event";
}

TEST_F(UpcastingTest, AnUpcasterThatThrowsIsAClearErrorAndStopsTheProjectionBeforeTheEvent) {
  bool broken = true;
  Upcasters upcasters;
  upcasters.add("MoneyAdded", [&broken](RecordedEvent event) {
    if (broken) throw std::runtime_error("no 'value' in the data");
    event.type = "Deposited";
    event.data = R"({"amount":10})";
    return event;
  });
  write_old_and_new_events();

  Repository accounts(store_, {.upcasters = &upcasters});
  try {
    accounts.load<Account>("account-1");
    FAIL() << "expected UpcastFailed";
  } catch (const UpcastFailed& e) {
    EXPECT_EQ(e.position(), 2U);
    EXPECT_EQ(e.stream(), "account-1");
    EXPECT_EQ(e.upcaster_type(), "MoneyAdded");
    const std::string what = e.what();
    EXPECT_NE(what.find("position 2"), std::string::npos) << what;
    EXPECT_NE(what.find("'MoneyAdded'"), std::string::npos) << what;
    EXPECT_NE(what.find("no 'value' in the data"), std::string::npos) << what;
  }

  Balances balances;
  ProjectionRunner runner(store_, balances, {.upcasters = &upcasters});
  runner.start();
  EXPECT_FALSE(runner.running()) << "stopped at the event it could not upcast";
  EXPECT_EQ(balances.checkpoint(), 1U) << "the checkpoint stays before it";
  EXPECT_EQ(runner.metrics().failures, 1U);

  broken = false;  // the upcaster fixed
  runner.start();
  EXPECT_TRUE(runner.running());
  EXPECT_EQ(balances.all()["account-1"], 15) << "the failed event retried, not skipped";
}

TEST_F(UpcastingTest, AnUpcasterMayNotMoveAnEventOrLoopBackToATypeItPassed) {
  append("s", "A", "{}");
  const RecordedEvent stored = store_.read_all().at(0);

  Upcasters moves;
  moves.add("A", [](RecordedEvent event) {
    event.position += 1;
    return event;
  });
  EXPECT_THROW(moves.upcast(stored), UpcastFailed);

  Upcasters renames_stream;
  renames_stream.add("A", [](RecordedEvent event) {
    event.stream = "t";
    return event;
  });
  EXPECT_THROW(renames_stream.upcast(stored), UpcastFailed);

  Upcasters empties_type;
  empties_type.add("A", "B").add("B", [](RecordedEvent event) {
    event.type.clear();
    return event;
  });
  EXPECT_THROW(empties_type.upcast(stored), UpcastFailed);

  Upcasters cycle;
  cycle.add("A", "B").add("B", "C").add("C", "A");
  try {
    cycle.upcast(stored);
    FAIL() << "expected UpcastFailed";
  } catch (const UpcastFailed& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }

  Upcasters bad_json;
  bad_json.add("A", "B", [](boost::json::value& data) { data = data.at("missing"); });
  EXPECT_THROW(bad_json.upcast(stored), UpcastFailed) << "a rewrite that throws";
}

TEST_F(UpcastingTest, RegisteringABadUpcasterThrowsInvalidArgument) {
  Upcasters upcasters;
  EXPECT_THROW(upcasters.add("", "B"), std::invalid_argument);
  EXPECT_THROW(upcasters.add("A", ""), std::invalid_argument);
  EXPECT_THROW(upcasters.add("A", Upcaster{}), std::invalid_argument);
  upcasters.add("A", "B");
  EXPECT_THROW(upcasters.add("A", "C"), std::invalid_argument) << "one upcaster per type";
  EXPECT_EQ(upcasters.size(), 1U);
}

}  // namespace
}  // namespace keel::cqrs
