// keel-shortener killed with SIGKILL under load, on SQLite (the default) and on PostgreSQL, then
// started again on the same storage: every link acknowledged with 201 before a kill still
// redirects to its URL after the restart, and no code is issued twice across the kills.
//
// Four client threads create links (each URL new, so every success is a 201) and one follows
// the links already acknowledged while the process is killed; requests cut off by the kill are
// not acknowledged and are not checked (they may or may not have been stored).
//
// KEEL_FAULT_ROUNDS (default 3) sets the number of kills; the long run is e.g. 20.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"
#include "tests/fault/link_load.h"
#include "tests/fault/service_process.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;

int rounds() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts.
  const char* value = std::getenv("KEEL_FAULT_ROUNDS");
  const int n = value != nullptr ? std::atoi(value) : 0;
  return n > 0 ? n : 3;
}

enum class Storage { kSqlite, kPostgres };

// Names the parameter in test listings.
void PrintTo(Storage storage, std::ostream* out) {
  *out << (storage == Storage::kSqlite ? "SQLite" : "PostgreSQL");
}

class FaultShortenerKillTest : public ::testing::TestWithParam<Storage> {
 protected:
  static void TearDownTestSuite() { postgres_.reset(); }

  void SetUp() override {
    std::vector<std::string> argv{KEEL_SHORTENER_BINARY, "--db",
                                  (dir_.path() / "links.db").string(), "--base-url",
                                  "https://sho.rt", "--code-key", "fault-key",
                                  // Every client is 127.0.0.1: lift the per-address limit.
                                  "--create-rate", "1000000", "--create-burst", "1000000"};
    if (GetParam() == Storage::kPostgres) {
      if (!postgres_) postgres_ = PostgresServer::start();
      argv.insert(argv.end(), {"--postgres", postgres_->create_database(
                                                 fmt::format("shortener_kill_{}", ++databases_))});
    }
    service_ = std::make_unique<ServiceProcess>("shortener", argv, dir_.path());
  }

  static inline std::unique_ptr<PostgresServer> postgres_;
  static inline int databases_ = 0;
  TempDir dir_{"keel-fault-shortener"};
  std::unique_ptr<ServiceProcess> service_;
  LinkLoad load_{[this] { return service_->port(); }};
};

TEST_P(FaultShortenerKillTest, NoAcknowledgedLinkIsLostAcrossKills) {
  constexpr int kWriters = 4;
  constexpr std::size_t kPerRound = 300;  // acknowledged creations before each kill
  const int kills = rounds();
  for (int round = 0; round < kills; ++round) {
    ASSERT_NO_THROW(service_->start());
    if (round > 0) {
      EXPECT_EQ(load_.count_lost(service_->port()), 0u) << "after kill " << round;
    }
    const std::size_t before = load_.acknowledged();
    load_.start(kWriters, fmt::format("r{}", round));
    const bool loaded =
        wait_until([&] { return load_.acknowledged() >= before + kPerRound; }, 60s, 1ms);
    service_->kill();  // in the middle of the creations and redirects
    load_.stop();
    ASSERT_TRUE(loaded) << "only " << load_.acknowledged() - before << " links created in round "
                        << round << "; last failure: " << load_.last_failure() << "\n"
                        << tail_of_file(service_->log());
  }
  ASSERT_NO_THROW(service_->start());
  EXPECT_EQ(load_.count_lost(service_->port()), 0u) << "of " << load_.acknowledged();
  // Creations still work after the last restart, with codes never issued before (LinkLoad fails
  // the test on a code issued twice).
  const std::size_t before = load_.acknowledged();
  load_.start(1, "after");
  EXPECT_TRUE(wait_until([&] { return load_.acknowledged() >= before + 20; }, 30s, 1ms));
  load_.stop();
  // Between kills, every answered request was a success: only requests cut off by a kill failed.
  EXPECT_TRUE(load_.failed_creations().empty()) << load_.last_failure();
  EXPECT_TRUE(load_.failed_redirects().empty()) << load_.last_failure();
  EXPECT_TRUE(service_->stop()) << tail_of_file(service_->log());
  RecordProperty("kills", kills);
  RecordProperty("acknowledged_links", static_cast<int>(load_.acknowledged()));
  RecordProperty("redirects", static_cast<int>(load_.redirects()));
  std::printf("kills %d, acknowledged links %zu, redirects during load %zu, cut off %zu\n", kills,
              load_.acknowledged(), load_.redirects(), load_.unanswered());
}

INSTANTIATE_TEST_SUITE_P(Storages, FaultShortenerKillTest,
                         ::testing::Values(Storage::kSqlite, Storage::kPostgres),
                         [](const auto& storage) {
                           return storage.param == Storage::kSqlite ? "Sqlite" : "Postgres";
                         });

}  // namespace
}  // namespace keel::testing
