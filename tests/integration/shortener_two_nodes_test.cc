// The URL shortener deployed on several nodes: two real keel-shortener processes (the binary
// under test, KEEL_SHORTENER_BINARY) on free loopback ports, sharing one PostgreSQL (links,
// counter epochs) and one Redis (counter blocks, link cache), both from tests/support. Links are
// created concurrently through both nodes; every code is distinct, a URL gets one code whichever
// node shortens it, a link made on one node redirects on the other, a delete on one node is a
// 410 on the other, and a node restarted continues without reusing a code.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel {
namespace {

using namespace std::chrono_literals;
using http::Method;
using http::Status;
using testing::wait_until;

constexpr std::string_view kAdminToken = "two-nodes-token";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One keel-shortener process, listening on a port the kernel chose (read from its log).
class Node {
 public:
  Node(std::string name, std::vector<std::string> flags, const std::filesystem::path& dir)
      : name_(std::move(name)), flags_(std::move(flags)), dir_(dir) {}

  // Starts the process and waits (at most 30 s) until /healthz answers 200.
  void start() {
    const std::filesystem::path log = dir_ / fmt::format("{}.{}.log", name_, ++starts_);
    std::vector<std::string> argv{KEEL_SHORTENER_BINARY, "--listen", "127.0.0.1:0", "--db",
                                  (dir_ / fmt::format("{}.db", name_)).string()};
    argv.insert(argv.end(), flags_.begin(), flags_.end());
    process_ = testing::ChildProcess::spawn(argv, log);
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    port_ = 0;
    const bool up = wait_until(
        [&] {
          std::smatch match;
          const std::string text = read_file(log);
          if (port_ == 0 && std::regex_search(text, match, listening)) {
            port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
          }
          if (port_ == 0 || !process_.running()) return !process_.running();
          try {
            return http::Client("127.0.0.1", port_, 2s).get("/healthz").result() == Status::ok;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s, 20ms);
    ASSERT_TRUE(up && process_.running())
        << name_ << " did not become healthy within 30 s; its log:\n"
        << testing::tail_of_file(log);
  }

  // SIGTERM, as an orchestrator stops a node; it must exit by itself.
  void stop() {
    process_.stop(SIGTERM, 10s);
    ASSERT_TRUE(process_.wait_status().has_value());
  }

  std::uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<std::string> flags_;
  std::filesystem::path dir_;
  int starts_ = 0;
  testing::ChildProcess process_;
  std::uint16_t port_ = 0;
};

struct Created {
  Status status;
  std::string code;
};

Created create(http::Client& client, const std::string& url) {
  const http::Response response =
      client.request(Method::post, "/api/v1/links", fmt::format(R"({{"url": "{}"}})", url),
                     {{"Content-Type", "application/json"}});
  if (response.result() != Status::created && response.result() != Status::ok) {
    ADD_FAILURE() << "POST " << url << ": " << response.result_int() << " " << response.body();
    return {response.result(), ""};
  }
  const boost::json::object body = boost::json::parse(response.body()).as_object();
  return {response.result(), std::string(body.at("code").as_string())};
}

class ShortenerTwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    postgres_ = testing::PostgresServer::start();
    redis_ = testing::RedisServer::start();
    const std::string database = postgres_->create_database("shortener");
    const std::vector<std::string> flags{
        "--postgres", database, "--redis", fmt::format("{}:{}", redis_->host(), redis_->port()),
        "--base-url", "https://sho.rt", "--code-key", "two-nodes-key", "--admin-token",
        std::string(kAdminToken),
        // Every request of the test comes from 127.0.0.1: lift the per-client creation limit.
        "--create-rate", "1000000", "--create-burst", "1000000"};
    a_ = std::make_unique<Node>("node-a", flags, dir_.path());
    b_ = std::make_unique<Node>("node-b", flags, dir_.path());
    a_->start();
    b_->start();
  }

  // Creates, through `node`, `per_thread` links of their own and the shared URLs, from `threads`
  // threads at once; records every code.
  void create_concurrently(Node& node, int threads, int per_thread, std::string_view tag) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        http::Client client("127.0.0.1", node.port());
        for (int i = 0; i < per_thread; ++i) {
          const std::string url = fmt::format("https://example.com/{}/{}/{}", tag, t, i);
          const Created own = create(client, url);
          const std::string shared_url = fmt::format("https://example.com/shared/{}", i);
          const Created shared = create(client, shared_url);
          const std::lock_guard lock(mutex_);
          EXPECT_EQ(own.status, Status::created) << url;
          if (!url_of_code_.emplace(own.code, url).second) {
            ADD_FAILURE() << "code " << own.code << " was issued twice (" << url << ", "
                          << url_of_code_[own.code] << ")";
          }
          codes_of_shared_[shared_url].insert(shared.code);
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
  }

  testing::TempDir dir_{"keel-shortener-nodes"};
  std::unique_ptr<testing::PostgresServer> postgres_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<Node> a_, b_;
  std::mutex mutex_;
  std::map<std::string, std::string> url_of_code_;                // guarded by mutex_
  std::map<std::string, std::set<std::string>> codes_of_shared_;  // guarded by mutex_
};

TEST_F(ShortenerTwoNodesTest, NodesShareCodesLinksAndDeletes) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::thread on_a([&] { create_concurrently(*a_, kThreads, kPerThread, "a"); });
  std::thread on_b([&] { create_concurrently(*b_, kThreads, kPerThread, "b"); });
  on_a.join();
  on_b.join();

  EXPECT_EQ(url_of_code_.size(), 2u * kThreads * kPerThread) << "every link got its own code";
  ASSERT_EQ(codes_of_shared_.size(), static_cast<std::size_t>(kPerThread));
  for (const auto& [url, codes] : codes_of_shared_) {
    EXPECT_EQ(codes.size(), 1u) << url << " was shortened on both nodes to different codes";
    EXPECT_FALSE(url_of_code_.contains(*codes.begin())) << "a code was issued twice";
  }

  // Every link redirects on both nodes, whichever created it.
  http::Client client_a("127.0.0.1", a_->port());
  http::Client client_b("127.0.0.1", b_->port());
  for (const auto& [code, url] : url_of_code_) {
    for (http::Client* client : {&client_a, &client_b}) {
      const http::Response response = client->get(fmt::format("/{}", code));
      ASSERT_EQ(response.result(), Status::found) << code;
      ASSERT_EQ(response[http::Field::location], url) << code;
    }
  }

  // Each link was followed once on each node: both nodes' stats count the two clicks, from the
  // click log they share in PostgreSQL (appended every 250 ms; waited for, at most 30 s).
  const std::string followed = std::next(url_of_code_.begin())->first;
  auto clicks_on = [&](http::Client& client) -> std::int64_t {
    const http::Response r = client.get(fmt::format("/api/v1/links/{}", followed));
    if (r.result() != Status::ok) return -1;
    return boost::json::parse(r.body()).as_object().at("clicks").to_number<std::int64_t>();
  };
  EXPECT_TRUE(wait_until([&] { return clicks_on(client_a) == 2 && clicks_on(client_b) == 2; }, 30s))
      << "clicks on A: " << clicks_on(client_a) << ", on B: " << clicks_on(client_b);

  // A delete on A: B, which has the link in its cache, answers 410 once A's invalidation has
  // crossed Redis (one hop; waited for, at most 30 s).
  const std::string doomed = url_of_code_.begin()->first;
  ASSERT_EQ(client_b.get(fmt::format("/{}", doomed)).result(), Status::found);
  const http::Response deleted =
      client_a.request(Method::delete_, fmt::format("/api/v1/links/{}", doomed), {},
                       {{"Authorization", fmt::format("Bearer {}", kAdminToken)}});
  ASSERT_EQ(deleted.result(), Status::no_content) << deleted.body();
  EXPECT_EQ(client_a.get(fmt::format("/{}", doomed)).result(), Status::gone);
  EXPECT_TRUE(wait_until(
      [&] { return client_b.get(fmt::format("/{}", doomed)).result() == Status::gone; }, 30s))
      << "node B still redirects a link deleted on node A";
  // And the URL left dedup: shortened again (on B), it gets a new code.
  const Created again = create(client_b, url_of_code_.begin()->second);
  EXPECT_EQ(again.status, Status::created);
  EXPECT_NE(again.code, doomed);
  EXPECT_FALSE(url_of_code_.contains(again.code));
}

TEST_F(ShortenerTwoNodesTest, ARestartedNodeContinuesWithoutReusingACode) {
  create_concurrently(*a_, 2, 30, "before");
  create_concurrently(*b_, 2, 30, "before-b");
  const std::size_t before = url_of_code_.size();
  ASSERT_EQ(before, 120u);

  a_->stop();
  // B keeps serving while A is down.
  http::Client client_b("127.0.0.1", b_->port());
  EXPECT_EQ(client_b.get(fmt::format("/{}", url_of_code_.begin()->first)).result(), Status::found);
  a_->start();

  create_concurrently(*a_, 2, 30, "after");
  create_concurrently(*b_, 2, 30, "after-b");
  EXPECT_EQ(url_of_code_.size(), before + 120u) << "a code issued before the restart came again";
  http::Client client_a("127.0.0.1", a_->port());
  for (const auto& [code, url] : url_of_code_) {
    const http::Response response = client_a.get(fmt::format("/{}", code));
    ASSERT_EQ(response.result(), Status::found) << code;
    ASSERT_EQ(response[http::Field::location], url);
  }
}

// Flags that cannot work are refused at start, with a message naming the bad value.
TEST(ShortenerFlagsTest, ABadRedisAddressIsAClearError) {
  for (const std::string bad :
       {"localhost", "localhost:", ":6379", "localhost:65536", "localhost:0", "localhost:63x9"}) {
    const testing::CommandResult result =
        testing::run_command({KEEL_SHORTENER_BINARY, "--redis", bad});
    EXPECT_EQ(result.exit_code, 2) << bad;
    EXPECT_NE(result.err.find("--redis must be HOST:PORT"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(bad), std::string::npos) << result.err;
  }
  const testing::CommandResult unreachable = testing::run_command(
      {KEEL_SHORTENER_BINARY, "--postgres", "host=127.0.0.1 port=1 connect_timeout=2"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_NE(unreachable.err.find("postgres"), std::string::npos) << unreachable.err;
}

}  // namespace
}  // namespace keel
