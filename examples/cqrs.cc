// Demo of keel/cqrs: bank accounts with event sourcing on a SQLite event store. The write model
// (an Account aggregate behind a CommandBus) enforces an overdraft rule and emits events; two
// read models follow: balances (inline, in the append's transaction) and a per-day activity feed
// (asynchronous, in another file). A concurrency conflict is resolved by retry, the feed is
// rebuilt from scratch, and the event history is printed.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <string>

#include "examples/demo.h"
#include "keel/cqrs.h"
#include "keel/sqlite.h"

namespace keel::demo {
namespace {

using namespace keel::cqrs;

constexpr std::int64_t kOverdraft = 100;

class Account : public Aggregate {
 public:
  void open(const std::string& owner) {
    if (opened_) throw CommandRejected("the account is already open");
    raise("AccountOpened", {{"owner", owner}});
  }
  void deposit(std::int64_t amount) {
    require_open();
    if (amount <= 0) throw CommandRejected("a deposit must be positive");
    raise("Deposited", {{"amount", amount}});
  }
  void withdraw(std::int64_t amount) {
    require_open();
    if (amount <= 0) throw CommandRejected("a withdrawal must be positive");
    if (balance_ - amount < -kOverdraft) {
      throw CommandRejected(
          fmt::format("insufficient funds: balance {}, overdraft limit {}", balance_, kOverdraft));
    }
    raise("Withdrawn", {{"amount", amount}});
  }
  std::int64_t balance() const { return balance_; }

 private:
  void require_open() const {
    if (!opened_) throw CommandRejected("no such account");
  }
  void apply(std::string_view type, const boost::json::value& data) override {
    if (type == "AccountOpened") opened_ = true;
    if (type == "Deposited") balance_ += data.at("amount").as_int64();
    if (type == "Withdrawn") balance_ -= data.at("amount").as_int64();
  }
  bool opened_ = false;
  std::int64_t balance_ = 0;
};

struct Open {
  std::string account, owner;
};
struct Deposit {
  std::string account;
  std::int64_t amount;
};
struct Withdraw {
  std::string account;
  std::int64_t amount;
};

std::int64_t amount_of(const RecordedEvent& e) {
  return boost::json::parse(e.data).at("amount").as_int64();
}

// Read model 1: the balance of each account, kept inline with the log.
class Balances : public sqlite::SqliteReadModel {
 public:
  std::string name() const override { return "balances"; }
  void create(sqlite::Database& db) override {
    db.execute("CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance INTEGER)");
  }
  void update(sqlite::Database& db, const RecordedEvent& e) override {
    std::int64_t delta = 0;
    if (e.type == "Deposited") delta = amount_of(e);
    if (e.type == "Withdrawn") delta = -amount_of(e);
    auto upsert = db.prepare(
        "INSERT INTO balances VALUES (?1, ?2) "
        "ON CONFLICT (account) DO UPDATE SET balance = balance + ?2");
    upsert.bind_text(1, e.stream).bind_int64(2, delta);
    upsert.step();
  }
  void clear(sqlite::Database& db) override { db.execute("DELETE FROM balances"); }
};

// Read model 2: what happened on each day, pre-joined for display (no query-time joins).
class ActivityFeed : public sqlite::SqliteReadModel {
 public:
  std::string name() const override { return "activity"; }
  void create(sqlite::Database& db) override {
    db.execute(
        "CREATE TABLE IF NOT EXISTS activity (position INTEGER PRIMARY KEY, day TEXT, line TEXT)");
  }
  void update(sqlite::Database& db, const RecordedEvent& e) override {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(e.recorded_at.time_since_epoch());
    const std::string day = fmt::format("{:%Y-%m-%d}", std::chrono::sys_seconds(seconds));
    std::string line = fmt::format("{} {}", e.stream, e.type);
    if (e.type != "AccountOpened") line += fmt::format(" {}", amount_of(e));
    auto insert = db.prepare("INSERT INTO activity VALUES (?1, ?2, ?3)");
    insert.bind_int64(1, static_cast<std::int64_t>(e.position))
        .bind_text(2, day)
        .bind_text(3, line);
    insert.step();
  }
  void clear(sqlite::Database& db) override { db.execute("DELETE FROM activity"); }
};

std::string status_text(const CommandResult& r) {
  switch (r.status) {
    case CommandResult::Status::accepted:
      return fmt::format("accepted (version {}, {} attempt{})", r.written.version, r.attempts,
                         r.attempts == 1 ? "" : "s");
    case CommandResult::Status::invalid:
      return fmt::format("invalid: {}", r.reason);
    case CommandResult::Status::rejected:
      return fmt::format("rejected: {}", r.reason);
    case CommandResult::Status::conflict:
      return fmt::format("conflict: {}", r.reason);
  }
  return "?";
}

}  // namespace

void run_cqrs_demo() {
  heading("CQRS + event sourcing: bank accounts on a SQLite event store");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("keel-cqrs-demo-{}", getpid());
  std::filesystem::create_directories(dir);
  {
    ManualClock clock;
    sqlite::SqliteEventStore store((dir / "events.db").string(), clock);
    Balances balances;
    store.add_inline_read_model(balances);
    sqlite::Database feed_db((dir / "feed.db").string());
    ActivityFeed feed;
    sqlite::SqliteProjection feed_projection(feed_db, feed);
    ProjectionRunner feed_runner(store, feed_projection);
    feed_runner.start();

    Repository accounts(store);
    CommandBus commands;
    commands.handle<Open>([&](const Open& c) {
      auto account = accounts.load<Account>(c.account);
      account.open(c.owner);
      return accounts.save(account);
    });
    commands.handle<Deposit>(
        [&](const Deposit& c) {
          auto account = accounts.load<Account>(c.account);
          account.deposit(c.amount);
          return accounts.save(account);
        },
        {.retryable = true});
    bool interfere = false;  // a second writer sneaks in once, to show the conflict
    commands.handle<Withdraw>(
        [&](const Withdraw& c) {
          auto account = accounts.load<Account>(c.account);
          account.withdraw(c.amount);
          if (interfere) {
            interfere = false;
            auto other = accounts.load<Account>(c.account);
            other.deposit(5);
            accounts.save(other);
            fmt::print("    (meanwhile another writer deposited 5 into {})\n", c.account);
          }
          return accounts.save(account);  // WrongExpectedVersion after the interference
        },
        {.retryable = true},
        [](const Withdraw& c) -> std::optional<std::string> {
          if (c.account.empty()) return "account is required";
          return std::nullopt;
        });

    fmt::print("commands:\n");
    const auto run = [&](std::string what, auto command) {
      fmt::print("  {:<34} -> {}\n", what, status_text(commands.dispatch(command)));
    };
    run("open account-1 (Ada)", Open{"account-1", "Ada"});
    run("open account-2 (Grace)", Open{"account-2", "Grace"});
    run("deposit 120 into account-1", Deposit{"account-1", 120});
    run("deposit 40 into account-2", Deposit{"account-2", 40});
    clock.advance(std::chrono::hours(24));
    run("withdraw 200 from account-1", Withdraw{"account-1", 200});
    run("withdraw 100 from account-1", Withdraw{"account-1", 100});
    run("deposit -5 into account-2", Deposit{"account-2", -5});
    run("withdraw 10 from (no account)", Withdraw{"", 10});
    interfere = true;
    run("withdraw 30 from account-2", Withdraw{"account-2", 30});

    sqlite::Database query((dir / "events.db").string());
    fmt::print("\nread model 1, balances (inline: never behind the log):\n");
    auto rows = query.prepare("SELECT account, balance FROM balances ORDER BY account");
    while (rows.step()) fmt::print("  {}  {:>5}\n", rows.column_text(0), rows.column_int64(1));

    const auto print_feed = [&] {
      sqlite::Database feed_query((dir / "feed.db").string());
      auto lines = feed_query.prepare("SELECT day, line FROM activity ORDER BY position");
      std::string day;
      while (lines.step()) {
        if (lines.column_text(0) != day) {
          day = lines.column_text(0);
          fmt::print("  {}\n", day);
        }
        fmt::print("    {}\n", lines.column_text(1));
      }
    };
    fmt::print("\nread model 2, activity per day (asynchronous projection, checkpoint {}):\n",
               feed_runner.position());
    print_feed();

    feed_runner.rebuild();
    fmt::print(
        "\nthe activity feed rebuilt from position 0 (rebuild #{}): emptied, every event applied "
        "again, checkpoint back at {}\n",
        feed_runner.metrics().rebuilds, feed_runner.position());
    print_feed();

    fmt::print("\nthe event history (the source of truth):\n");
    for (const RecordedEvent& e : store.read_all()) {
      fmt::print("  #{:<2} {}@{} {} {}\n", e.position, e.stream, e.version, e.type, e.data);
    }
    const auto account_1 = accounts.load<Account>("account-1");
    fmt::print("\naccount-1 rebuilt from its {} events: balance {}\n", account_1.version(),
               account_1.balance());
    feed_runner.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace keel::demo
