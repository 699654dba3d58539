// SqliteEventStore survives a crash at any point. First, a child process appends batches of events
// as fast as it can and is killed with SIGKILL (no destructor, no flush, no chance to finish the
// batch in flight) at a moment that varies from round to round. After each kill the file must be
// readable, pass SQLite's integrity check, and hold whole batches only: positions 1..n without a
// gap, every stream's versions 1..k, every batch's ten events or none of them. Each round's child
// continues on the file the previous one crashed, so recovering a WAL left by a crash is part of
// what is tested. Then a child kills itself at one exact point: inside an append's transaction,
// its whole batch inserted, before COMMIT.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "keel/cqrs/event_store.h"
#include "keel/sqlite/database.h"
#include "keel/sqlite/event_store.h"
#include "tests/integration/sqlite_event_file.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using cqrs::ExpectedVersion;
using cqrs::NewEvent;
using cqrs::RecordedEvent;

constexpr std::size_t kBatch = 10;
constexpr int kRounds = 12;

// The child: appends batches of kBatch events to "round-<r>" until it is killed. Never returns.
[[noreturn]] void append_until_killed(const std::string& file, int round) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that failed before killing us
  try {
    sqlite::SqliteEventStore store(file);
    const std::string stream = fmt::format("round-{}", round);
    std::vector<NewEvent> batch;
    for (std::size_t i = 0; i < kBatch; ++i) {
      batch.push_back(NewEvent{
          .type = "Appended",
          .data = fmt::format(R"({{"index":{},"padding":"{}"}})", i, std::string(200, 'x'))});
    }
    for (std::uint64_t version = 0;; version += kBatch) {
      store.append(stream, ExpectedVersion::exactly(version), batch);
    }
  } catch (...) {
    ::_exit(2);  // the parent expects death by SIGKILL: any other end fails the test
  }
}

void expect_whole_batches_only(const std::string& file, int round) {
  {
    sqlite::Database db(file);
    sqlite::Statement check = db.prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.step());
    EXPECT_EQ(check.column_text(0), "ok") << "after round " << round;
  }
  sqlite::SqliteEventStore store(file);
  const std::vector<RecordedEvent> all = store.read_all();
  EXPECT_EQ(all.size() % kBatch, 0U) << "a partial batch is visible after round " << round;
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].position, i + 1) << "a gap in positions after round " << round;
    ASSERT_EQ(all[i].version, ++versions[all[i].stream]) << all[i].stream;
    // The i-th event of a batch carries index i: a batch is whole and in order.
    const std::string index = fmt::format(R"({{"index":{},)", (all[i].version - 1) % kBatch);
    ASSERT_TRUE(all[i].data.starts_with(index)) << all[i].data.substr(0, 20);
  }
  for (const auto& [stream, version] : versions) {
    EXPECT_EQ(version % kBatch, 0U) << stream << " ends inside a batch";
  }
}

TEST(SqliteEventStoreCrashTest, AProcessKilledAtAnyPointLeavesWholeBatchesInAReadableFile) {
  const TempDir dir("keel-event-crash");
  const std::string file = (dir.path() / "events.db").string();
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t before = committed_events(file);
    const pid_t child = ::fork();
    ASSERT_NE(child, -1);
    if (child == 0) append_until_killed(file, round);

    // Kill at a point that moves with the round: after 1, 8, 15, ... batches of this round, at
    // whatever the child is doing then (mid-insert, mid-commit, between batches).
    const std::uint64_t target = before + kBatch * static_cast<std::uint64_t>(1 + 7 * round);
    const bool reached = wait_until([&] { return committed_events(file) >= target; },
                                    std::chrono::seconds(60), std::chrono::microseconds(200));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(reached) << "the child appended too slowly: " << committed_events(file) << " of "
                         << target << " events";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child " << describe_wait_status(status);
    expect_whole_batches_only(file, round);
    if (HasFatalFailure()) return;
  }
  // The file that survived twelve crashes still takes appends, at the next position.
  sqlite::SqliteEventStore store(file);
  const std::uint64_t last = committed_events(file);
  const NewEvent after{.type = "AfterTheCrashes", .data = "{}"};
  EXPECT_EQ(store.append("after", ExpectedVersion::no_stream(), std::span(&after, 1)).position,
            last + 1);
}

// Kills the process from inside an append's transaction, once its whole batch is inserted and
// before COMMIT: an inline read model is brought up to date at exactly that point.
class KillOnBatch final : public sqlite::SqliteReadModel {
 public:
  explicit KillOnBatch(std::uint64_t version) : version_(version) {}
  std::string name() const override { return "kill-on-batch"; }
  void create(sqlite::Database&) override {}
  void update(sqlite::Database&, const RecordedEvent& event) override {
    if (event.version == version_) ::raise(SIGKILL);
  }
  void clear(sqlite::Database&) override {}

 private:
  std::uint64_t version_;
};

TEST(SqliteEventStoreCrashTest, AProcessKilledBeforeCommitLeavesNothingOfItsBatch) {
  const TempDir dir("keel-event-crash");
  const std::string file = (dir.path() / "events.db").string();
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    try {
      sqlite::SqliteEventStore store(file);
      KillOnBatch kill_in_second_batch(kBatch + 1);
      store.add_inline_read_model(kill_in_second_batch);
      const std::vector<NewEvent> batch(kBatch, NewEvent{.type = "Appended", .data = "{}"});
      store.append("s", ExpectedVersion::no_stream(), batch);
      store.append("s", ExpectedVersion::exactly(kBatch), batch);  // dies before its COMMIT
    } catch (...) {
    }
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child " << describe_wait_status(status);
  EXPECT_EQ(committed_events(file), kBatch) << "the first batch, none of the second";
  sqlite::SqliteEventStore reopened(file);
  EXPECT_EQ(reopened.stream_version("s"), kBatch);
  const NewEvent next{.type = "Appended", .data = "{}"};
  EXPECT_EQ(reopened.append("s", ExpectedVersion::exactly(kBatch), std::span(&next, 1)).position,
            kBatch + 1)
      << "the positions the lost batch held are given again: no gap";
}

}  // namespace
}  // namespace keel::testing
