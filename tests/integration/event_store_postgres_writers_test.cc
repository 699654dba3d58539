// PostgresEventStore with writers in two processes (fork) on one database, against a private
// PostgreSQL (tests/support). The writers start together on an empty database (so they race to
// create the schema), append batches to streams of their own and read-modify-write one shared
// stream with ExpectedVersion::exactly, retrying on conflict. Meanwhile the parent reads
// read_all() after the last position it saw, over and over, and fails if a position ever shows
// up before the one below it; a subscription in the parent must see every event once, in order.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keel/cqrs/event_store.h"
#include "keel/postgres/event_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"

#if defined(__SANITIZE_ADDRESS__)
// libpqxx 6.4 leaks the PGresult of a statement that finds its connection lost; see
// keel/postgres/connection_test.cc.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx\n"; }
#endif

namespace keel::testing {
namespace {

using cqrs::ExpectedVersion;
using cqrs::NewEvent;
using cqrs::RecordedEvent;
using cqrs::WrongExpectedVersion;

constexpr int kWriters = 2;
constexpr int kRounds = 150;

// A writer process: kRounds of (a batch of 1..5 events to its own stream, one increment of the
// shared stream). Exits 0 when all went in, 1 with a message otherwise; never returns.
[[noreturn]] void write_and_exit(const std::string& database, int writer) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    postgres::PostgresEventStore store(database);
    const std::string own = fmt::format("writer-{}", writer);
    for (int round = 0; round < kRounds; ++round) {
      const std::vector<NewEvent> batch(static_cast<std::size_t>(round % 5 + 1),
                                        NewEvent{.type = "Written", .data = "{}"});
      store.append(own, ExpectedVersion::exactly(store.stream_version(own)), batch);
      const NewEvent increment{.type = "Incremented", .data = fmt::format("{}", writer)};
      for (;;) {
        try {
          store.append("shared", ExpectedVersion::exactly(store.stream_version("shared")),
                       std::span(&increment, 1));
          break;
        } catch (const WrongExpectedVersion&) {
          // The other process incremented first: read the new version and try again.
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "writer %d failed: %s\n", writer, e.what());
    ::_exit(1);
  }
  ::_exit(0);  // no destructor of the parent's objects (the server!) may run here
}

std::uint64_t events_per_writer() {
  std::uint64_t events = 0;
  for (int round = 0; round < kRounds; ++round) events += static_cast<std::uint64_t>(round % 5 + 2);
  return events;
}

TEST(PostgresEventStoreWritersTest, TwoProcessesAppendingKeepPositionsGapFreeAndVersionsExact) {
  std::unique_ptr<PostgresServer> server;
  try {
    server = PostgresServer::start();
  } catch (const std::exception& e) {
    FAIL() << "could not start PostgreSQL: " << e.what();
  }
  const std::string database = server->create_database("two_writers");

  std::vector<pid_t> writers;
  for (int writer = 0; writer < kWriters; ++writer) {
    const pid_t pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) write_and_exit(database, writer);
    writers.push_back(pid);
  }

  // The parent's store is opened while the writers run (the schema may not exist yet).
  postgres::PostgresEventStore reader(database);
  std::vector<std::uint64_t> delivered;
  Subscription subscription =
      reader.subscribe_all(0, [&](const RecordedEvent& e) { delivered.push_back(e.position); });
  std::uint64_t last_read = 0;
  std::uint64_t reads = 0;
  std::vector<std::string> failures;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::map<pid_t, int> statuses;
  while (statuses.size() < writers.size() && std::chrono::steady_clock::now() < deadline) {
    for (const RecordedEvent& e : reader.read_all(last_read, 50)) {
      if (e.position != last_read + 1) {
        failures.push_back(fmt::format("read position {} right after {}", e.position, last_read));
      }
      last_read = e.position;
    }
    ++reads;
    reader.deliver_new_events();
    for (const pid_t pid : writers) {
      int status = 0;
      if (!statuses.contains(pid) && ::waitpid(pid, &status, WNOHANG) == pid) {
        statuses[pid] = status;
      }
    }
  }
  for (const pid_t pid : writers) {
    if (!statuses.contains(pid)) ::kill(pid, SIGKILL);
  }
  ASSERT_EQ(statuses.size(), writers.size()) << "the writers did not finish within 120 s";
  for (const auto& [pid, status] : statuses) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "writer " << pid << " " << describe_wait_status(status) << " (its error is above)";
  }
  EXPECT_TRUE(failures.empty()) << failures.size() << " gaps seen in " << reads
                                << " reads, the first: " << failures.front();

  const std::vector<RecordedEvent> all = reader.read_all();
  ASSERT_EQ(all.size(), kWriters * events_per_writer());
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].position, i + 1) << "positions are 1..n";
    ASSERT_EQ(all[i].version, ++versions[all[i].stream]) << all[i].stream;
  }
  EXPECT_EQ(versions["shared"], std::uint64_t{kWriters * kRounds})
      << "every increment of both processes went in exactly once";

  reader.deliver_new_events();
  ASSERT_EQ(delivered.size(), all.size());
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    ASSERT_EQ(delivered[i], i + 1) << "the subscription saw each event once, in order";
  }
  EXPECT_GT(reads, 1U) << "the reader ran alongside the writers";
}

}  // namespace
}  // namespace keel::testing
