// keel-notifier killed with SIGKILL under load, on SQLite (the default) and on PostgreSQL, then
// started again on the same storage. Its sms provider posts to an HTTP sink run by this test,
// which records every delivery it receives, in order.
//
// What must hold (docs/notification_system.md, "Delivery guarantees"):
// - every notification acknowledged with 202 before a kill is delivered after the restarts;
// - a delivery reaches the sink twice only when the kill fell between the provider's acceptance
//   and the commit of `sent`: its first receipt came before a kill and the second after it, and
//   there are at most as many such duplicates per kill as worker threads (each has at most one
//   provider call in flight); and the resend carries the same Idempotency-Key.
//
// KEEL_FAULT_ROUNDS (default 3) sets the number of kills.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/fault/service_process.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;

constexpr int kWorkerThreads = 6;  // "workers": {"critical": 2, "standard": 4} below

int rounds() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts.
  const char* value = std::getenv("KEEL_FAULT_ROUNDS");
  const int n = value != nullptr ? std::atoi(value) : 0;
  return n > 0 ? n : 3;
}

// The sms gateway: numbers every request it receives; remembers each delivery's receipts.
class Sink {
 public:
  struct Receipt {
    std::size_t sequence;
    std::string idempotency_key;
  };

  Sink() {
    http::Router router;
    router.add(Method::post, "/sms", [this](http::Request& request) {
      const auto body = boost::json::parse(request.body());
      const std::string id(body.at("delivery_id").as_string());
      const std::lock_guard lock(mu_);
      receipts_[id].push_back(
          Receipt{total_++, std::string(request.header("Idempotency-Key").value_or(""))});
      return http::json_response(Status::ok,
                                 boost::json::object{{"id", fmt::format("sms-{}", id)}});
    });
    server_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{.threads = 8});
    server_->start();
  }
  ~Sink() { server_->stop(); }

  std::uint16_t port() const { return server_->port(); }
  std::size_t total() const {
    const std::lock_guard lock(mu_);
    return total_;
  }
  std::map<std::string, std::vector<Receipt>> receipts() const {
    const std::lock_guard lock(mu_);
    return receipts_;
  }

 private:
  mutable std::mutex mu_;
  std::size_t total_ = 0;                                 // guarded by mu_
  std::map<std::string, std::vector<Receipt>> receipts_;  // guarded by mu_
  std::unique_ptr<http::Server> server_;
};

enum class Storage { kSqlite, kPostgres };

// Names the parameter in test listings.
void PrintTo(Storage storage, std::ostream* out) {
  *out << (storage == Storage::kSqlite ? "SQLite" : "PostgreSQL");
}

class FaultNotifierKillTest : public ::testing::TestWithParam<Storage> {
 protected:
  static void TearDownTestSuite() { postgres_.reset(); }

  void SetUp() override {
    // A 2 s lease: a delivery caught mid-send by the kill is taken over 2 s after it was claimed.
    std::ofstream(config_) << fmt::format(
        R"j({{"providers": {{"sms": {{"primary": {{"type": "http", "url": "http://127.0.0.1:{}/sms"}}}}}},
             "allowed_private_hosts": ["127.0.0.1"],
             "rate_limit": {{"per_second": 100000, "burst": 100000}},
             "workers": {{"critical": 2, "standard": 4}},
             "lease_seconds": 2, "poll_milliseconds": 50}})j",
        sink_.port());
    std::vector<std::string> argv{KEEL_NOTIFIER_BINARY, "--config", config_.string(), "--db",
                                  (dir_.path() / "notifier.db").string()};
    if (GetParam() == Storage::kPostgres) {
      if (!postgres_) postgres_ = PostgresServer::start();
      argv.insert(argv.end(), {"--postgres", postgres_->create_database(
                                                 fmt::format("notifier_kill_{}", ++databases_))});
    }
    service_ = std::make_unique<ServiceProcess>("notifier", argv, dir_.path());
  }

  http::Response call(Method method, const std::string& target, const std::string& body = {}) {
    http::Client client("127.0.0.1", service_->port());
    return client.request(method, target, body, {{"Content-Type", "application/json"}});
  }

  // Users u0..u9, whom the posters notify by SMS, get a phone number.
  void give_the_users_a_phone() {
    for (int user = 0; user < 10; ++user) {
      ASSERT_EQ(call(Method::put, fmt::format("/api/v1/users/u{}/contacts", user),
                     R"({"phone": "+33612345678"})")
                    .result(),
                Status::ok);
    }
  }

  // Posts notifications until `stop`; records each 202 with its delivery ids.
  void post_until(std::atomic<bool>& stop, int round, int thread) {
    static constexpr std::array<const char*, 4> kPriorities = {"critical", "high", "normal", "low"};
    std::unique_ptr<http::Client> client;
    for (int i = 0; !stop.load(); ++i) {
      try {
        if (!client) client = std::make_unique<http::Client>("127.0.0.1", service_->port(), 5s);
        const http::Response r = client->request(
            Method::post, "/api/v1/notifications",
            fmt::format(
                R"({{"user_id": "u{}", "channels": ["sms"], "priority": "{}", "category": "billing", "body": "r{} t{} n{}"}})",
                i % 10, kPriorities[static_cast<std::size_t>(i) % kPriorities.size()], round,
                thread, i),
            {{"Content-Type", "application/json"}});
        if (r.result() != Status::accepted) {
          ++errors_;
          const std::lock_guard lock(mutex_);
          ++rejected_[static_cast<int>(r.result_int())];
          continue;
        }
        const auto body = boost::json::parse(r.body());
        const std::lock_guard lock(mutex_);
        std::vector<std::string>& deliveries = accepted_[std::string(body.at("id").as_string())];
        for (const auto& d : body.at("deliveries").as_array()) {
          deliveries.emplace_back(d.at("id").as_string());
        }
      } catch (const std::exception&) {
        ++errors_;  // the process is gone: not acknowledged
        client.reset();
      }
    }
  }

  // Every accepted notification is delivered, and each delivery ends `sent` (so no resend is
  // still to come). Returns the accepted notifications.
  std::map<std::string, std::vector<std::string>> expect_all_accepted_sent() {
    const auto accepted = [&] {
      const std::lock_guard lock(mutex_);
      return accepted_;
    }();
    EXPECT_TRUE(wait_until(
        [&] {
          const auto receipts = sink_.receipts();
          for (const auto& [notification, deliveries] : accepted) {
            for (const std::string& d : deliveries) {
              if (!receipts.contains(d)) return false;
            }
          }
          return true;
        },
        60s))
        << "accepted notifications were not delivered\n"
        << tail_of_file(service_->log());
    for (const auto& [notification, deliveries] : accepted) {
      std::string status;
      const bool sent = wait_until(
          [&] {
            const http::Response r =
                call(Method::get, fmt::format("/api/v1/notifications/{}", notification));
            if (r.result() != Status::ok) return false;
            bool all_sent = true;
            const boost::json::value body = boost::json::parse(r.body());
            for (const auto& d : body.at("deliveries").as_array()) {
              all_sent = all_sent && d.at("status").as_string() == "sent";
            }
            status = fmt::format("{} {}", r.result_int(), r.body());
            return all_sent;
          },
          30s);
      if (!sent) {
        ADD_FAILURE() << notification << " not sent: " << status << "\n"
                      << tail_of_file(service_->log());
        break;
      }
    }
    return accepted;
  }

  std::size_t accepted_count() {
    const std::lock_guard lock(mutex_);
    return accepted_.size();
  }
  std::size_t rejected_count() {
    const std::lock_guard lock(mutex_);
    std::size_t total = 0;
    for (const auto& [status, count] : rejected_) total += count;
    return total;
  }

  static inline std::unique_ptr<PostgresServer> postgres_;
  static inline int databases_ = 0;
  TempDir dir_{"keel-fault-notifier"};
  std::filesystem::path config_ = dir_.path() / "notifier.json";
  // Whether the sink's count stays unchanged for half a second (within 30 s).
  bool sink_goes_quiet() {
    std::size_t last = sink_.total();
    auto since = std::chrono::steady_clock::now();
    return wait_until(
        [&] {
          const std::size_t total = sink_.total();
          const auto now = std::chrono::steady_clock::now();
          if (total != last) {
            last = total;
            since = now;
          }
          return now - since >= 500ms;
        },
        30s, 10ms);
  }

  Sink sink_;
  std::unique_ptr<ServiceProcess> service_;
  std::mutex mutex_;
  std::map<std::string, std::vector<std::string>> accepted_;  // notification -> deliveries
  std::atomic<std::size_t> errors_{0};
  std::map<int, std::size_t> rejected_;  // answers other than 202, by status; guarded by mutex_
};

TEST_P(FaultNotifierKillTest, AcceptedNotificationsAreDeliveredAndDuplicatesOnlyComeFromTheKill) {
  constexpr int kPosters = 3;
  constexpr std::size_t kSentPerRound = 150;  // deliveries at the sink before each kill
  const int kills = rounds();
  std::vector<std::size_t> kill_marks;  // the sink's request count at each kill

  ASSERT_NO_THROW(service_->start());
  ASSERT_NO_FATAL_FAILURE(give_the_users_a_phone());
  for (int round = 0; round < kills; ++round) {
    if (round > 0) {
      ASSERT_NO_THROW(service_->start());
    }
    const std::size_t before = sink_.total();
    std::atomic<bool> stop{false};
    std::vector<std::thread> posters;
    for (int t = 0; t < kPosters; ++t) {
      posters.emplace_back([&, t] { post_until(stop, round, t); });
    }
    const bool loaded =
        wait_until([&] { return sink_.total() >= before + kSentPerRound; }, 60s, 1ms);
    service_->kill();  // while workers are calling the sink and posters are queueing
    stop = true;
    for (std::thread& t : posters) t.join();
    // Requests the killed process wrote may still sit in the sink's sockets or threads, and the
    // sink counts them late; nothing else reaches it until the restart (resends come after the
    // lease, seconds later). So the mark is the count once the sink has gone quiet.
    ASSERT_TRUE(sink_goes_quiet()) << "the sink kept receiving after the kill";
    kill_marks.push_back(sink_.total());
    ASSERT_TRUE(loaded) << "only " << sink_.total() - before << " deliveries in round " << round
                        << "\n"
                        << tail_of_file(service_->log());
  }
  ASSERT_NO_THROW(service_->start());

  const auto accepted = expect_all_accepted_sent();
  if (HasFailure()) return;

  // Duplicates: each straddles a kill; at most one per worker thread per kill.
  std::map<std::size_t, int> duplicates_per_kill;
  int duplicates = 0;
  for (const auto& [delivery, receipts] : sink_.receipts()) {
    for (std::size_t i = 1; i < receipts.size(); ++i) {
      ++duplicates;
      EXPECT_EQ(receipts[i].idempotency_key, receipts[0].idempotency_key) << delivery;
      const auto kill =
          std::upper_bound(kill_marks.begin(), kill_marks.end(), receipts[i - 1].sequence);
      const bool straddles = kill != kill_marks.end() && receipts[i].sequence >= *kill;
      EXPECT_TRUE(straddles) << "delivery " << delivery << " was sent twice without a kill between"
                             << " (receipts " << receipts[i - 1].sequence << " and "
                             << receipts[i].sequence << ")";
      if (straddles) ++duplicates_per_kill[*kill];
    }
  }
  for (const auto& [mark, count] : duplicates_per_kill) {
    EXPECT_LE(count, kWorkerThreads) << "more duplicates at one kill than provider calls in flight";
  }
  EXPECT_TRUE(service_->stop()) << tail_of_file(service_->log());
  RecordProperty("kills", kills);
  RecordProperty("accepted_notifications", static_cast<int>(accepted.size()));
  RecordProperty("sink_requests", static_cast<int>(sink_.total()));
  RecordProperty("duplicates", duplicates);
  std::printf(
      "kills %d, accepted notifications %zu, sink requests %zu, duplicates %d, failed posts %zu\n",
      kills, accepted.size(), sink_.total(), duplicates, errors_.load());
}

INSTANTIATE_TEST_SUITE_P(Storages, FaultNotifierKillTest,
                         ::testing::Values(Storage::kSqlite, Storage::kPostgres),
                         [](const auto& storage) {
                           return storage.param == Storage::kSqlite ? "Sqlite" : "Postgres";
                         });

// The notifier on PostgreSQL with the database crashed (SIGKILL to the server and all its
// processes) and started again under load, keel-notifier left running: intake answers a clean
// error meanwhile, the workers and intake reconnect on their own, every notification accepted
// before, during or after the outage is delivered, and a duplicate can only come from a send
// whose outcome could not be recorded (at most one per worker thread).
class FaultNotifierPostgresRestartTest : public FaultNotifierKillTest {};

TEST_P(FaultNotifierPostgresRestartTest, IntakeErrorsCleanlyAndEverythingAcceptedIsDelivered) {
  ASSERT_NO_THROW(service_->start());
  ASSERT_NO_FATAL_FAILURE(give_the_users_a_phone());
  std::atomic<bool> stop{false};
  std::vector<std::thread> posters;
  for (int t = 0; t < 3; ++t) posters.emplace_back([&, t] { post_until(stop, 0, t); });
  EXPECT_TRUE(wait_until([&] { return sink_.total() >= 100; }, 60s, 1ms));
  postgres_->stop(/*crash=*/true);
  EXPECT_TRUE(wait_until([&] { return rejected_count() >= 20; }, 30s, 1ms))
      << "intake did not answer errors while PostgreSQL was down\n"
      << tail_of_file(service_->log());
  ASSERT_NO_THROW(postgres_->start_again());
  const std::size_t accepted_before = accepted_count();
  EXPECT_TRUE(wait_until([&] { return accepted_count() >= accepted_before + 100; }, 60s, 1ms))
      << "intake did not recover\n"
      << tail_of_file(service_->log());
  stop = true;
  for (std::thread& t : posters) t.join();
  ASSERT_EQ(service_->state(), "running") << tail_of_file(service_->log());

  const auto accepted = expect_all_accepted_sent();
  int duplicates = 0;
  for (const auto& [delivery, receipts] : sink_.receipts()) {
    duplicates += static_cast<int>(receipts.size()) - 1;
  }
  EXPECT_LE(duplicates, kWorkerThreads) << "more duplicates than provider calls in flight";
  const auto rejected = [&] {
    const std::lock_guard lock(mutex_);
    return rejected_;
  }();
  for (const auto& [status, count] : rejected) {
    EXPECT_TRUE(status == 500 || status == 503) << count << " answers with status " << status;
  }
  EXPECT_TRUE(service_->stop()) << tail_of_file(service_->log());
  std::printf("accepted %zu, rejected during the outage %zu, duplicates %d\n", accepted.size(),
              rejected_count(), duplicates);
}

INSTANTIATE_TEST_SUITE_P(Postgres, FaultNotifierPostgresRestartTest,
                         ::testing::Values(Storage::kPostgres),
                         [](const auto&) { return "Postgres"; });

}  // namespace
}  // namespace keel::testing
