// Many threads run sagas on one coordinator and one log while another thread recovers: every
// saga ends exactly once, and recovery never drives a saga that is running.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "keel/saga/coordinator.h"
#include "keel/saga/saga_log.h"

namespace keel::saga {
namespace {

TEST(SagaConcurrency, ParallelSagasAndRecoveryNeverOverlap) {
  InMemorySagaLog log;
  std::mutex mutex;
  std::map<std::string, int> balance;  // +1 per reservation, -1 per release
  const auto reserve = [&](Context&) {
    const std::lock_guard lock(mutex);
    ++balance[std::string(current_step()->saga_id)];
  };
  const auto release = [&](Context&) {
    const std::lock_guard lock(mutex);
    --balance[std::string(current_step()->saga_id)];
  };
  SagaCoordinator coordinator(log, SagaOptions{.sleeper = [](Duration) {}});
  coordinator.define("order", {{"reserve", reserve, release},
                               {"charge",
                                [](Context& c) {
                                  if (c.at("n").as_int64() % 3 == 0) {
                                    throw std::runtime_error("declined");
                                  }
                                },
                                no_op}});
  constexpr int kThreads = 4;
  constexpr int kSagas = 200;
  std::atomic<bool> done{false};
  std::thread recoverer([&] {
    while (!done.load()) {
      const RecoveryReport report = coordinator.recover();
      EXPECT_TRUE(report.finished.empty());  // every unfinished saga is held by its runner
    }
  });
  std::vector<std::thread> threads;
  std::atomic<int> completed{0}, compensated{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSagas; ++i) {
        const SagaResult r = coordinator.execute("order", {{"n", i}}, fmt::format("{}-{}", t, i));
        (r.status == SagaStatus::completed ? completed : compensated)++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  done = true;
  recoverer.join();
  EXPECT_TRUE(log.unfinished().empty());
  EXPECT_EQ(completed + compensated, kThreads * kSagas);
  EXPECT_EQ(compensated.load(), kThreads * 67);  // n % 3 == 0 for 67 of 0..199
  for (const auto& [id, value] : balance) {
    const int n = std::stoi(id.substr(id.find('-') + 1));
    EXPECT_EQ(value, n % 3 == 0 ? 0 : 1) << id;
  }
}

}  // namespace
}  // namespace keel::saga
