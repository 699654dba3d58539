// The SagaLog conformance suite on a private PostgreSQL, and recovery by two coordinators after
// a third one's process is killed mid-saga: each saga is finished by exactly one of them.
#include "keel/postgres/saga_log.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/saga/coordinator.h"
#include "keel/saga/saga_log_conformance.h"
#include "tests/support/postgres_server.h"

namespace keel::postgres {
namespace {

using saga::testing::SagaLogCase;
using saga::testing::SagaLogConformanceTest;
using saga::testing::SagaLogPair;

// One server for the executable, started on first use; each log pair gets a new database.
keel::testing::PostgresServer& server() {
  static std::unique_ptr<keel::testing::PostgresServer> instance =
      keel::testing::PostgresServer::start();
  return *instance;
}

std::string new_database() {
  static std::atomic<int> next{0};
  return server().create_database(fmt::format("saga_log_{}", next++));
}

SagaLogPair two_coordinators() {
  const std::string database = new_database();
  return SagaLogPair{std::make_shared<PostgresSagaLog>(database),
                     std::make_shared<PostgresSagaLog>(database)};
}

INSTANTIATE_TEST_SUITE_P(Postgres, SagaLogConformanceTest,
                         ::testing::Values(SagaLogCase{"postgres", two_coordinators}),
                         saga::testing::saga_log_case_name);

TEST(PostgresSagaLog, AClaimDiesWithItsCoordinatorsConnection) {
  const std::string database = new_database();
  PostgresSagaLog survivor(database);
  {
    PostgresSagaLog doomed(database);
    doomed.append({.saga_id = "s", .saga_name = "order", .event = saga::SagaEvent::started});
    EXPECT_FALSE(survivor.try_claim("s"));
    EXPECT_THROW(survivor.append({.saga_id = "s",
                                  .saga_name = "order",
                                  .event = saga::SagaEvent::step_started,
                                  .step = 0}),
                 std::logic_error);  // fenced off while the holder lives
  }  // its connection closes: the server drops its locks
  EXPECT_TRUE(survivor.try_claim("s"));
}

// A child process starts sagas that hang in their second step and is SIGKILLed; two coordinators
// then recover at the same time.
TEST(PostgresSagaLog, TwoCoordinatorsRecoverEachSagaOfADeadOneExactlyOnce) {
  constexpr int kSagas = 12;
  const std::string database = new_database();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      close(fds[0]);
      PostgresSagaLog log(database);
      saga::SagaCoordinator coordinator(log);
      coordinator.define("order", {{"reserve", saga::no_op, saga::no_op},
                                   {"charge",
                                    [&](saga::Context&) {
                                      const char byte = 'r';
                                      if (write(fds[1], &byte, 1) != 1) _exit(3);
                                      for (;;) pause();  // killed here, the charge in flight
                                    },
                                    saga::no_op}});
      std::vector<std::thread> threads;
      for (int i = 0; i < kSagas; ++i) {
        threads.emplace_back([&coordinator, i] {
          coordinator.execute("order", {{"n", i}}, fmt::format("order-{}", i));
        });
      }
      for (std::thread& thread : threads) thread.join();
    } catch (...) {
    }
    _exit(3);
  }
  close(fds[1]);
  for (int i = 0; i < kSagas; ++i) {
    char byte = 0;
    ASSERT_EQ(read(fds[0], &byte, 1), 1) << "the child did not reach its charge step";
  }
  close(fds[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  std::mutex mutex;
  std::map<std::string, int> refunds, releases;
  const auto count = [&](std::map<std::string, int>& counter) {
    return [&](saga::Context&) {
      const std::lock_guard lock(mutex);
      ++counter[std::string(saga::current_step()->saga_id)];
    };
  };
  std::vector<saga::RecoveryReport> reports(2);
  std::vector<std::thread> recoverers;
  for (int c = 0; c < 2; ++c) {
    recoverers.emplace_back([&, c] {
      PostgresSagaLog log(database);
      saga::SagaCoordinator coordinator(log);
      coordinator.define("order", {{"reserve", saga::no_op, count(releases)},
                                   {"charge", saga::no_op, count(refunds)}});
      reports[static_cast<std::size_t>(c)] = coordinator.recover();
    });
  }
  for (std::thread& thread : recoverers) thread.join();

  std::set<std::string> finished;
  for (const saga::RecoveryReport& report : reports) {
    for (const saga::SagaResult& result : report.finished) {
      EXPECT_TRUE(finished.insert(result.saga_id).second) << result.saga_id << " recovered twice";
      EXPECT_EQ(result.status, saga::SagaStatus::compensated);
      EXPECT_EQ(result.failed_step, "charge");
    }
  }
  EXPECT_EQ(finished.size(), static_cast<std::size_t>(kSagas));
  for (int i = 0; i < kSagas; ++i) {
    const std::string id = fmt::format("order-{}", i);
    EXPECT_EQ(refunds[id], 1) << id;  // the charge in flight is compensated, once
    EXPECT_EQ(releases[id], 1) << id;
  }
  PostgresSagaLog check(database);
  EXPECT_TRUE(check.unfinished().empty());
}

}  // namespace
}  // namespace keel::postgres
