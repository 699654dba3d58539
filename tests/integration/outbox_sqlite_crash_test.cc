// cqrs::Outbox publishes at least once across a crash. A child process appends events to a
// SqliteEventStore with an Outbox publishing them to its EventBus (checkpoint in a
// SqliteCheckpointStore), records every message its bus delivers to a file, and dies by SIGKILL
// at a chosen point of event kCrashAt's way out:
// - after its commit, before the outbox saw it (a subscription registered before the outbox's,
//   hence served first, kills the process): the event is in the log and was never published;
// - after its publish, before its checkpoint was saved (the bus subscriber kills the process).
// A new Outbox started on the same files (a restart, with a new bus) must publish what the child
// left: the messages of both processes together cover every event of the log, and the restart
// begins right after the checkpoint.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "keel/cqrs/outbox.h"
#include "keel/pubsub/event_bus.h"
#include "keel/sqlite/event_store.h"
#include "tests/integration/sqlite_event_file.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using cqrs::ExpectedVersion;
using cqrs::NewEvent;

constexpr std::uint64_t kCrashAt = 40;

enum class CrashPoint { after_commit, after_publish };

std::string header(const pubsub::Message& m, std::string_view name) {
  for (const auto& [key, value] : m.headers) {
    if (key == name) return value;
  }
  return "";
}

struct Files {
  TempDir dir{"keel-outbox-crash"};
  std::string events = (dir.path() / "events.db").string();
  std::string checkpoints = (dir.path() / "checkpoints.db").string();
  std::string published = (dir.path() / "published-by-the-child.txt").string();
};

// The child: appends one event at a time, publishing each through the outbox and writing its
// position to `files.published` (unbuffered: what was written survives the kill), until it
// kills itself at `crash_point` of event kCrashAt. Never returns.
[[noreturn]] void run_until_crash(const Files& files, CrashPoint crash_point) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    const int fd = ::open(files.published.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0) ::_exit(2);
    sqlite::SqliteEventStore store(files.events);
    sqlite::SqliteCheckpointStore checkpoint_store(files.checkpoints);
    // Served before the outbox's subscription, which is made after it.
    Subscription crash_after_commit = store.subscribe_all(0, [&](const cqrs::RecordedEvent& e) {
      if (crash_point == CrashPoint::after_commit && e.position == kCrashAt) ::raise(SIGKILL);
    });
    pubsub::EventBus bus;
    Subscription recorder = bus.subscribe("#", [&](const pubsub::Message& m) {
      const std::string position = header(m, "x-event-position");
      const std::string line = fmt::format("{}\n", position);
      if (::write(fd, line.data(), line.size()) < 0) ::_exit(3);
      if (crash_point == CrashPoint::after_publish && position == std::to_string(kCrashAt)) {
        ::raise(SIGKILL);
      }
    });
    cqrs::Outbox outbox(store, bus, checkpoint_store);
    outbox.start();
    const NewEvent deposited{.type = "Deposited", .data = R"({"amount":1})"};
    for (int i = 0;; ++i) {
      store.append(fmt::format("account-{}", i % 7), ExpectedVersion::any(),
                   std::span(&deposited, 1));
    }
  } catch (...) {
    ::_exit(2);  // the parent expects death by SIGKILL: any other end fails the test
  }
}

std::vector<std::uint64_t> lines_of(const std::string& file) {
  std::vector<std::uint64_t> positions;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) positions.push_back(std::stoull(line));
  }
  return positions;
}

class OutboxSqliteCrashTest : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(OutboxSqliteCrashTest, WhatTheKilledProcessLeftIsPublishedAtRestart) {
  const Files files;
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) run_until_crash(files, GetParam());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child " << describe_wait_status(status);

  const std::vector<std::uint64_t> published_before = lines_of(files.published);
  sqlite::SqliteEventStore store(files.events);
  sqlite::SqliteCheckpointStore checkpoint_store(files.checkpoints);
  EXPECT_EQ(committed_events(files.events), kCrashAt) << "the child died at event " << kCrashAt;
  EXPECT_EQ(checkpoint_store.load("outbox"), kCrashAt - 1) << "its checkpoint was not saved";
  EXPECT_EQ(published_before.size(),
            GetParam() == CrashPoint::after_commit ? kCrashAt - 1 : kCrashAt);

  pubsub::EventBus bus;  // the restarted process
  std::vector<std::uint64_t> published_after;
  Subscription recorder = bus.subscribe("account.Deposited", [&](const pubsub::Message& m) {
    published_after.push_back(std::stoull(header(m, "x-event-position")));
  });
  cqrs::Outbox outbox(store, bus, checkpoint_store);
  outbox.start();
  EXPECT_EQ(published_after, std::vector<std::uint64_t>{kCrashAt})
      << "the restart publishes from the checkpoint on (again, if the child had published it)";
  EXPECT_EQ(checkpoint_store.load("outbox"), kCrashAt);

  std::set<std::uint64_t> every(published_before.begin(), published_before.end());
  every.insert(published_after.begin(), published_after.end());
  EXPECT_EQ(every.size(), kCrashAt) << "each event published at least once";
  EXPECT_EQ(*every.rbegin(), kCrashAt);
}

std::string crash_point_name(const ::testing::TestParamInfo<CrashPoint>& point) {
  return point.param == CrashPoint::after_commit ? "BetweenCommitAndPublish"
                                                 : "BetweenPublishAndCheckpoint";
}

INSTANTIATE_TEST_SUITE_P(Crash, OutboxSqliteCrashTest,
                         ::testing::Values(CrashPoint::after_commit, CrashPoint::after_publish),
                         crash_point_name);

}  // namespace
}  // namespace keel::testing
