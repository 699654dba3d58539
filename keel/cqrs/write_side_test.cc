// Aggregates, the Repository (with snapshots) and the CommandBus, on an InMemoryEventStore.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "keel/cqrs/aggregate.h"
#include "keel/cqrs/bank_account_test.h"
#include "keel/cqrs/command_bus.h"
#include "keel/cqrs/event_store.h"

namespace keel::cqrs {
namespace {

using testing::Account;

class WriteSideTest : public ::testing::Test {
 protected:
  // Opens account-1 with `deposits` deposits of 10, saving after each.
  void open_with_deposits(Repository& repository, int deposits) {
    auto account = repository.load<Account>("account-1");
    account.open("Ada", 0);
    repository.save(account);
    for (int i = 0; i < deposits; ++i) {
      auto loaded = repository.load<Account>("account-1");
      loaded.deposit(10);
      repository.save(loaded);
    }
  }

  ManualClock clock_;
  InMemoryEventStore store_{clock_};
};

TEST_F(WriteSideTest, AnAggregateIsRebuiltFromItsStream) {
  Repository accounts(store_);
  auto account = accounts.load<Account>("account-1");
  EXPECT_FALSE(account.opened());
  EXPECT_EQ(account.version(), 0U);
  account.open("Ada", 50);
  account.deposit(100);
  account.withdraw(120);
  EXPECT_EQ(account.balance(), -20) << "raised events apply at once";
  EXPECT_EQ(account.pending().size(), 3U);
  EXPECT_EQ(accounts.save(account, R"({"user":"teller-7"})"),
            (AppendResult{.version = 3, .position = 3}));
  EXPECT_TRUE(account.pending().empty());
  EXPECT_EQ(account.loaded_version(), 3U);

  const auto reloaded = accounts.load<Account>("account-1");
  EXPECT_EQ(reloaded.balance(), -20);
  EXPECT_EQ(reloaded.version(), 3U);
  const std::vector<RecordedEvent> stored = store_.read_stream("account-1");
  ASSERT_EQ(stored.size(), 3U);
  EXPECT_EQ(stored[1].type, "Deposited");
  EXPECT_EQ(stored[1].data, R"({"amount":100})");
  EXPECT_EQ(stored[1].metadata, R"({"user":"teller-7"})");
}

TEST_F(WriteSideTest, ARuleBrokenThrowsAndRaisesNothing) {
  Repository accounts(store_);
  auto account = accounts.load<Account>("account-1");
  EXPECT_THROW(account.deposit(5), CommandRejected) << "not open yet";
  account.open("Ada", 0);
  EXPECT_THROW(account.withdraw(1), CommandRejected);
  EXPECT_EQ(account.pending().size(), 1U);
}

TEST_F(WriteSideTest, ASaveAfterAnotherWriterSavedConflicts) {
  Repository accounts(store_);
  open_with_deposits(accounts, 1);
  auto first = accounts.load<Account>("account-1");
  auto second = accounts.load<Account>("account-1");
  first.deposit(1);
  second.deposit(2);
  accounts.save(first);
  EXPECT_THROW(accounts.save(second), WrongExpectedVersion);
  EXPECT_EQ(accounts.load<Account>("account-1").balance(), 11);
}

TEST_F(WriteSideTest, LoadingReadsTheLatestSnapshotAndOnlyTheEventsAfterIt) {
  InMemorySnapshotStore snapshots;
  Repository accounts(store_, {.snapshots = &snapshots, .snapshot_every = 10});
  open_with_deposits(accounts, 24);  // versions 1..25: snapshots at 10 and 20
  EXPECT_EQ(accounts.metrics().snapshots_taken, 2U);
  ASSERT_TRUE(snapshots.load("account-1").has_value());
  EXPECT_EQ(snapshots.load("account-1")->version, 20U);

  const auto account = accounts.load<Account>("account-1");
  EXPECT_TRUE(account.restored());
  EXPECT_EQ(account.events_applied(), 5) << "the tail after the snapshot at version 20";
  EXPECT_EQ(account.balance(), 240);
  EXPECT_EQ(account.version(), 25U);

  Repository without_snapshots(store_);
  const auto replayed = without_snapshots.load<Account>("account-1");
  EXPECT_EQ(replayed.events_applied(), 25);
  EXPECT_EQ(replayed.balance(), 240) << "the same state either way";
}

TEST_F(WriteSideTest, ASnapshotThatCannotBeSavedDoesNotFailTheSave) {
  class BrokenSnapshots final : public SnapshotStore {
   public:
    std::optional<Snapshot> load(std::string_view) override { return std::nullopt; }
    void save(std::string_view, const Snapshot&) override { throw std::runtime_error("disk full"); }
  } broken;
  Repository accounts(store_, {.snapshots = &broken, .snapshot_every = 1});
  auto account = accounts.load<Account>("account-1");
  account.open("Ada", 0);
  EXPECT_EQ(accounts.save(account).version, 1U);
  EXPECT_EQ(accounts.metrics().snapshot_failures, 1U);
  EXPECT_EQ(accounts.metrics().saves, 1U);
}

TEST_F(WriteSideTest, MisuseThrows) {
  EXPECT_THROW(Repository(store_, {.snapshot_every = 0}), std::invalid_argument);
  Repository accounts(store_);
  Account never_loaded;
  EXPECT_THROW(accounts.save(never_loaded), std::logic_error);
  EXPECT_THROW(accounts.load<Account>(""), std::invalid_argument);
  auto account = accounts.load<Account>("account-1");
  EXPECT_THROW(accounts.load("account-1", account), std::logic_error);
}

struct OpenAccount {
  std::string account;
  std::string owner;
};
struct Withdraw {
  std::string account;
  std::int64_t amount = 0;
};

class CommandBusTest : public WriteSideTest {
 protected:
  void SetUp() override {
    commands_.handle<OpenAccount>(
        [&](const OpenAccount& c) {
          auto account = accounts_.load<Account>(c.account);
          account.open(c.owner, 0);
          return accounts_.save(account);
        },
        {},
        [](const OpenAccount& c) -> std::optional<std::string> {
          if (c.owner.empty()) return "owner is required";
          return std::nullopt;
        });
    auto account = accounts_.load<Account>("account-1");
    account.open("Ada", 0);
    account.deposit(100);
    accounts_.save(account);
  }

  // A withdrawal whose first run loses a race: another teller withdraws `rival` between its
  // load and its save.
  void handle_withdraw_racing(std::int64_t rival, CommandOptions options) {
    commands_.handle<Withdraw>(
        [&, rival](const Withdraw& c) {
          auto account = accounts_.load<Account>(c.account);
          account.withdraw(c.amount);
          if (runs_++ == 0) {
            auto other = accounts_.load<Account>(c.account);
            other.withdraw(rival);
            accounts_.save(other);
          }
          return accounts_.save(account);
        },
        options);
  }

  Repository accounts_{store_};
  CommandBus commands_;
  int runs_ = 0;
};

TEST_F(CommandBusTest, AValidCommandIsHandledAndItsEventsWritten) {
  const CommandResult result = commands_.dispatch(OpenAccount{"account-2", "Grace"});
  EXPECT_TRUE(result.accepted()) << result.reason;
  EXPECT_EQ(result.written, (AppendResult{.version = 1, .position = 3}));
  EXPECT_EQ(result.attempts, 1);
  EXPECT_EQ(commands_.metrics().accepted, 1U);
}

TEST_F(CommandBusTest, AnInvalidCommandNeverReachesItsHandler) {
  const CommandResult result = commands_.dispatch(OpenAccount{"account-2", ""});
  EXPECT_EQ(result.status, CommandResult::Status::invalid);
  EXPECT_EQ(result.reason, "owner is required");
  EXPECT_EQ(result.attempts, 0);
  EXPECT_EQ(store_.stream_version("account-2"), 0U);
}

TEST_F(CommandBusTest, ABrokenBusinessRuleIsReturnedToTheCaller) {
  handle_withdraw_racing(0, {});
  runs_ = 1;  // no race
  const CommandResult result = commands_.dispatch(Withdraw{"account-1", 150});
  EXPECT_EQ(result.status, CommandResult::Status::rejected);
  EXPECT_EQ(result.reason, "insufficient funds: the overdraft limit would be exceeded");
  EXPECT_EQ(store_.stream_version("account-1"), 2U) << "nothing written";
  EXPECT_EQ(commands_.dispatch(OpenAccount{"account-1", "Ada"}).status,
            CommandResult::Status::rejected);
  EXPECT_EQ(commands_.metrics().rejected, 2U);
}

TEST_F(CommandBusTest, ARetryableCommandThatLostARaceRunsAgainOnTheNewState) {
  handle_withdraw_racing(30, {.retryable = true});
  const CommandResult result = commands_.dispatch(Withdraw{"account-1", 60});
  EXPECT_TRUE(result.accepted()) << result.reason;
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(accounts_.load<Account>("account-1").balance(), 10) << "100 - 30 - 60";
  EXPECT_EQ(commands_.metrics().retries, 1U);
}

TEST_F(CommandBusTest, TheRetryDecidesAgainAndMayRejectWhatTheFirstRunAccepted) {
  handle_withdraw_racing(50, {.retryable = true});
  const CommandResult result = commands_.dispatch(Withdraw{"account-1", 80});
  EXPECT_EQ(result.status, CommandResult::Status::rejected) << "50 left, 80 asked";
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(accounts_.load<Account>("account-1").balance(), 50);
}

TEST_F(CommandBusTest, ACommandNotDeclaredRetryableReportsTheConflict) {
  handle_withdraw_racing(30, {});
  const CommandResult result = commands_.dispatch(Withdraw{"account-1", 60});
  EXPECT_EQ(result.status, CommandResult::Status::conflict);
  EXPECT_EQ(result.attempts, 1);
  EXPECT_NE(result.reason.find("expected exactly(2)"), std::string::npos) << result.reason;
  EXPECT_EQ(accounts_.load<Account>("account-1").balance(), 70);
}

TEST_F(CommandBusTest, RetriesStopAtMaxAttempts) {
  commands_.handle<Withdraw>(
      [&](const Withdraw&) -> AppendResult {
        ++runs_;
        throw WrongExpectedVersion("account-1", ExpectedVersion::exactly(1), 2);
      },
      {.retryable = true, .max_attempts = 4});
  const CommandResult result = commands_.dispatch(Withdraw{"account-1", 1});
  EXPECT_EQ(result.status, CommandResult::Status::conflict);
  EXPECT_EQ(result.attempts, 4);
  EXPECT_EQ(runs_, 4);
  EXPECT_EQ(commands_.metrics().conflicts, 1U);
  EXPECT_EQ(commands_.metrics().retries, 3U);
}

TEST_F(CommandBusTest, OtherFailuresPassThroughAndMisuseThrows) {
  commands_.handle<Withdraw>(
      [](const Withdraw&) -> AppendResult { throw std::runtime_error("engine down"); });
  EXPECT_THROW(commands_.dispatch(Withdraw{"account-1", 1}), std::runtime_error);
  EXPECT_THROW(commands_.dispatch(42), std::invalid_argument) << "no handler for int";
  EXPECT_THROW(commands_.handle<Withdraw>([](const Withdraw&) { return AppendResult{}; }),
               std::invalid_argument)
      << "a second handler";
  EXPECT_THROW(commands_.handle<int>([](const int&) { return AppendResult{}; },
                                     {.retryable = true, .max_attempts = 0}),
               std::invalid_argument);
  EXPECT_THROW(commands_.handle<double>(nullptr), std::invalid_argument);
}

TEST_F(WriteSideTest, AnEventNestedDeeperThanBoostJsonsDefaultStillLoads) {
  // The stores accept data nested up to 1,000 levels; a load parses it as deep (Boost.JSON's
  // default stops at 32).
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  const NewEvent note{.type = "Note", .data = deep};
  store_.append("account-1", ExpectedVersion::no_stream(), std::span(&note, 1));
  Repository accounts(store_);
  EXPECT_EQ(accounts.load<Account>("account-1").version(), 1U);
}

}  // namespace
}  // namespace keel::cqrs
