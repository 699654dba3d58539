// keel-notifier on several processes: two real keel-notifier binaries share one PostgreSQL
// database (claims with FOR UPDATE SKIP LOCKED), their sms provider posting to an HTTP sink run
// by this test. Every delivery must reach the sink exactly once. Then a worker is SIGKILLed while
// its provider call is in flight: after the lease expires, the other process sends the delivery
// again (at-least-once), with the same Idempotency-Key.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/support/free_port.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;

// The sms gateway: counts each delivery id it receives; can hold requests until released.
class Sink {
 public:
  Sink() {
    http::Router router;
    router.add(Method::post, "/sms", [this](http::Request& request) {
      const auto body = boost::json::parse(request.body());
      const std::string id(body.at("delivery_id").as_string());
      std::unique_lock lock(mu_);
      ++received_[id];
      keys_[id].emplace_back(request.header("Idempotency-Key").value_or(""));
      changed_.notify_all();
      changed_.wait_for(lock, 20s, [&] { return !hold_; });
      return http::json_response(Status::ok,
                                 boost::json::object{{"id", fmt::format("sms-{}", id)}});
    });
    server_ = std::make_unique<http::Server>(std::move(router), http::ServerOptions{.threads = 8});
    server_->start();
  }
  ~Sink() {
    release();
    server_->stop();
  }
  std::uint16_t port() const { return server_->port(); }
  void hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    hold_ = false;
    changed_.notify_all();
  }
  std::map<std::string, int> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  std::vector<std::string> keys(const std::string& id) const {
    std::lock_guard lock(mu_);
    const auto found = keys_.find(id);
    return found == keys_.end() ? std::vector<std::string>{} : found->second;
  }
  bool wait_for_requests(std::size_t n, Duration timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] {
      std::size_t total = 0;
      for (const auto& [id, count] : received_) total += static_cast<std::size_t>(count);
      return total >= n;
    });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool hold_ = false;
  std::map<std::string, int> received_;
  std::map<std::string, std::vector<std::string>> keys_;
  std::unique_ptr<http::Server> server_;
};

// One keel-notifier process.
struct Worker {
  ChildProcess process;
  std::uint16_t port = 0;
  std::filesystem::path log;
};

class NotifierTwoWorkersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { postgres_ = PostgresServer::start().release(); }
  static void TearDownTestSuite() {
    delete postgres_;
    postgres_ = nullptr;
  }

  void write_config(double lease_seconds) {
    std::ofstream(config_) << fmt::format(
        R"j({{"providers": {{"sms": {{"primary": {{"type": "http", "url": "http://127.0.0.1:{}/sms"}}}}}},
             "allowed_private_hosts": ["127.0.0.1"],
             "rate_limit": {{"per_second": 100000, "burst": 100000}},
             "workers": {{"critical": 2, "standard": 4}},
             "lease_seconds": {}, "poll_milliseconds": 50}})j",
        sink_.port(), lease_seconds);
  }

  Worker start_worker(const std::string& database, const std::string& name) {
    Worker w;
    w.port = free_loopback_port();
    w.log = dir_.path() / fmt::format("{}.log", name);
    w.process =
        ChildProcess::spawn({KEEL_NOTIFIER_BINARY, "--postgres", database, "--listen",
                             fmt::format("127.0.0.1:{}", w.port), "--config", config_.string()},
                            w.log);
    const bool ready = wait_until(
        [&] {
          try {
            http::Client client("127.0.0.1", w.port, 1s);
            return client.get("/healthz").result() == Status::ok;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s);
    if (!ready) ADD_FAILURE() << name << " did not start:\n" << tail_of_file(w.log);
    return w;
  }

  static http::Response call(std::uint16_t port, Method method, const std::string& target,
                             const std::string& body = {}) {
    http::Client client("127.0.0.1", port);
    return client.request(method, target, body, {{"Content-Type", "application/json"}});
  }

  static std::string sent_counter(std::uint16_t port) {
    const std::string metrics = call(port, Method::get, "/metrics").body();
    const std::string series = "keel_notifier_delivery_events_total{event=\"sent\"} ";
    const std::size_t at = metrics.find(series);
    return at == std::string::npos
               ? "missing"
               : metrics.substr(at + series.size(), metrics.find('\n', at) - at - series.size());
  }

  static PostgresServer* postgres_;
  TempDir dir_{"keel-notifier-two-workers"};
  std::filesystem::path config_ = dir_.path() / "notifier.json";
  Sink sink_;
};

PostgresServer* NotifierTwoWorkersTest::postgres_ = nullptr;

TEST_F(NotifierTwoWorkersTest, EveryDeliveryIsSentExactlyOnce) {
  constexpr int kNotifications = 400;
  write_config(60);
  const std::string database = postgres_->create_database("notifier_exactly_once");
  Worker a = start_worker(database, "worker-a");
  Worker b = start_worker(database, "worker-b");
  for (int user = 0; user < 10; ++user) {
    ASSERT_EQ(call(a.port, Method::put, fmt::format("/api/v1/users/u{}/contacts", user),
                   R"({"phone": "+33612345678"})")
                  .result(),
              Status::ok);
  }
  static constexpr std::array<const char*, 4> kPriorities = {"critical", "high", "normal", "low"};
  for (int i = 0; i < kNotifications; ++i) {
    const http::Response r = call(
        i % 2 == 0 ? a.port : b.port, Method::post, "/api/v1/notifications",
        fmt::format(
            R"({{"user_id": "u{}", "channels": ["sms"], "priority": "{}", "category": "billing", "body": "n{}"}})",
            i % 10, kPriorities[static_cast<std::size_t>(i) % kPriorities.size()], i));
    ASSERT_EQ(r.result(), Status::accepted) << r.body();
  }
  ASSERT_TRUE(sink_.wait_for_requests(kNotifications, 60s))
      << "only " << sink_.received().size() << " deliveries arrived\n"
      << tail_of_file(a.log) << tail_of_file(b.log);
  // Leave time for a duplicate to show up, were there one.
  std::this_thread::sleep_for(500ms);
  const std::map<std::string, int> received = sink_.received();
  EXPECT_EQ(received.size(), static_cast<std::size_t>(kNotifications));
  int duplicates = 0;
  for (const auto& [id, count] : received) duplicates += count - 1;
  EXPECT_EQ(duplicates, 0) << "a delivery was sent twice";
  // Both processes took part.
  EXPECT_NE(sent_counter(a.port), "0");
  EXPECT_NE(sent_counter(b.port), "0");
  RecordProperty("sent_by_a", sent_counter(a.port));
  RecordProperty("sent_by_b", sent_counter(b.port));
  a.process.stop(SIGTERM, 10s);
  b.process.stop(SIGTERM, 10s);
  EXPECT_EQ(a.process.wait_status().value_or(-1), 0) << "SIGTERM must stop it cleanly\n"
                                                     << tail_of_file(a.log);
}

TEST_F(NotifierTwoWorkersTest, ADeliveryInFlightWhenItsWorkerIsKilledIsSentAgainAfterTheLease) {
  write_config(2);
  const std::string database = postgres_->create_database("notifier_crash");
  Worker a = start_worker(database, "worker-a");
  ASSERT_EQ(call(a.port, Method::put, "/api/v1/users/u1/contacts", R"({"phone": "+33612345678"})")
                .result(),
            Status::ok);
  sink_.hold();
  const http::Response created = call(
      a.port, Method::post, "/api/v1/notifications",
      R"({"user_id": "u1", "channels": ["sms"], "priority": "critical", "category": "security", "body": "code 1234"})");
  ASSERT_EQ(created.result(), Status::accepted);
  const std::string id(boost::json::parse(created.body()).at("id").as_string());
  ASSERT_TRUE(sink_.wait_for_requests(1, 30s)) << tail_of_file(a.log);
  a.process.stop(SIGKILL, 1s);  // mid-send: the gateway has the request, the worker is gone
  sink_.release();

  Worker b = start_worker(database, "worker-b");
  ASSERT_TRUE(sink_.wait_for_requests(2, 30s)) << "the delivery was not sent again\n"
                                               << tail_of_file(b.log);
  const std::map<std::string, int> received = sink_.received();
  ASSERT_EQ(received.size(), 1u);
  const std::string delivery_id = received.begin()->first;
  EXPECT_EQ(received.begin()->second, 2) << "at-least-once: sent again after the lease";
  const std::vector<std::string> keys = sink_.keys(delivery_id);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], keys[1])
      << "the resend carries the same Idempotency-Key for the gateway to absorb";
  EXPECT_FALSE(keys[0].empty());
  ASSERT_TRUE(wait_until(
      [&] {
        const auto n = boost::json::parse(
            call(b.port, Method::get, fmt::format("/api/v1/notifications/{}", id)).body());
        return n.at("deliveries").as_array()[0].at("status").as_string() == "sent";
      },
      10s));
  const auto n = boost::json::parse(
      call(b.port, Method::get, fmt::format("/api/v1/notifications/{}", id)).body());
  EXPECT_EQ(n.at("deliveries").as_array()[0].at("attempts").as_int64(), 2);
}

}  // namespace
}  // namespace keel::testing
