// Slow and oversized clients.
//
// Against both real binaries (keel-shortener, keel-notifier on SQLite in a temp dir): while dozens
// of slowloris connections (a header that never ends) and slow bodies hang, other clients are
// served; oversized headers get 431 and oversized bodies 413 (also when only announced).
//
// The binaries keep keel/http's default timeouts (idle 30 s, header 10 s, body 30 s) and have no
// flags for them, so the cut-off itself is checked on a keel::http::Server with timeouts of a
// fraction of a second: a header or a body trickled a byte at a time is cut off once its timeout
// has passed in total (progress does not extend it), while one I/O thread keeps serving others.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"
#include "keel/http/server.h"
#include "tests/abuse/service.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {
namespace {

using http::Method;
using http::Status;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int kSlowloris = 40;
constexpr int kSlowBodies = 20;

// A request that a service answers with 200 without side effects, and one with a body.
struct Target {
  std::string name;
  std::vector<std::string> argv;  // without --listen
  std::string get;                // answers 200
  std::string post;               // takes a JSON body
};

class SlowClientsAgainstBinaries : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string db = (dir_.path() / "service.db").string();
    if (GetParam() == "shortener") {
      target_ = {"keel-shortener", {KEEL_SHORTENER_BINARY, "--db", db}, "/", "/api/v1/links"};
    } else {
      target_ = {"keel-notifier",
                 {KEEL_NOTIFIER_BINARY, "--db", db},
                 "/api/v1/users/u1/contacts",
                 "/api/v1/notifications"};
    }
    service_ = Service::start(target_.argv, dir_.path() / "service.log");
  }

  TempDir dir_{"keel-slow-clients"};
  Target target_;
  Service service_;
};

TEST_P(SlowClientsAgainstBinaries, SlowClientsDoNotBlockOthers) {
  // Every slow connection is opened and has sent part of its request before the others start.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < kSlowloris; ++i) {
    slow.push_back(std::make_unique<RawConnection>(service_.port));
    ASSERT_TRUE(slow.back()->send(
        fmt::format("GET {} HTTP/1.1\r\nHost: x\r\nX-Slow-{}: ", target_.get, i)));
  }
  for (int i = 0; i < kSlowBodies; ++i) {
    slow.push_back(std::make_unique<RawConnection>(service_.port));
    ASSERT_TRUE(slow.back()->send(fmt::format(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
        "\r\n{{\"url\": \"https://exa",
        target_.post)));
  }
  // A byte more on each, so they are all mid-request (not idle) while the others are served.
  for (auto& connection : slow) ASSERT_TRUE(connection->send("a"));

  constexpr int kOthers = 50;
  int served = 0;
  for (int i = 0; i < kOthers; ++i) {
    http::Client client("127.0.0.1", service_.port, 5s);  // a new connection each time
    const http::Response r = client.get(i % 2 == 0 ? target_.get : "/healthz");
    EXPECT_EQ(r.result(), Status::ok) << r.body();
    served += r.result() == Status::ok ? 1 : 0;
  }
  EXPECT_EQ(served, kOthers);
  // The slow ones got no answer: they are still waiting for their timeouts.
  for (auto& connection : slow) {
    std::string received;
    EXPECT_FALSE(connection->closed_within(10ms, &received));
    EXPECT_EQ(received, "");
  }
  RecordProperty("slow_connections", static_cast<int>(slow.size()));
  RecordProperty("served_meanwhile", served);
}

TEST_P(SlowClientsAgainstBinaries, OversizedHeadersGet431AndBodies413) {
  {
    http::Client client("127.0.0.1", service_.port);
    const http::Response r =
        client.request(Method::get, target_.get, {}, {{"X-Big", std::string(16 * 1024, 'h')}});
    EXPECT_EQ(r.result(), Status::request_header_fields_too_large) << r.body();
  }
  {
    // Many headers, each small, adding up past the limit.
    std::vector<std::pair<std::string, std::string>> headers;
    for (int i = 0; i < 200; ++i)
      headers.emplace_back(fmt::format("X-H{}", i), std::string(60, 'v'));
    http::Client client("127.0.0.1", service_.port);
    EXPECT_EQ(client.request(Method::get, target_.get, {}, headers).result(),
              Status::request_header_fields_too_large);
  }
  {
    http::Client client("127.0.0.1", service_.port);
    const http::Response r = client.request(
        Method::post, target_.post,
        fmt::format(R"({{"url": "https://example.com/{}"}})", std::string(100 * 1024, 'p')),
        {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.result(), Status::payload_too_large) << r.body();
    EXPECT_THAT(r.body(), HasSubstr("body_too_large"));
  }
  {
    // Announced too large: refused before the body is sent, and the connection closes.
    RawConnection raw(service_.port);
    ASSERT_TRUE(raw.send(fmt::format(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
        "104857600\r\n\r\n",
        target_.post)));
    EXPECT_THAT(raw.read_until_closed(5000ms), HasSubstr("413 Payload Too Large"));
  }
  {
    // A chunked body that grows past the limit.
    RawConnection raw(service_.port);
    std::string request = fmt::format(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        target_.post);
    for (int i = 0; i < 80; ++i) request += fmt::format("400\r\n{}\r\n", std::string(1024, 'c'));
    raw.send(request);  // the server may close before all of it is written
    EXPECT_THAT(raw.read_until_closed(5000ms), HasSubstr("413 Payload Too Large"));
  }
  // Still serving.
  http::Client client("127.0.0.1", service_.port);
  EXPECT_EQ(client.get("/healthz").result(), Status::ok);
}

INSTANTIATE_TEST_SUITE_P(Services, SlowClientsAgainstBinaries,
                         ::testing::Values("shortener", "notifier"));

// The cut-off, on keel::http with short timeouts and a single I/O thread.
class SlowClientCutOff : public ::testing::Test {
 protected:
  void SetUp() override {
    http::Router router;
    router.add(Method::get, "/ping",
               [](http::Request&) { return http::text_response(Status::ok, "pong"); });
    router.add(Method::post, "/echo",
               [](http::Request& r) { return http::text_response(Status::ok, r.body()); });
    server_ = std::make_unique<http::Server>(
        std::move(router),
        http::ServerOptions{
            .threads = 1, .idle_timeout = 400ms, .header_timeout = 400ms, .body_timeout = 400ms});
    server_->start();
  }

  // Sends `bytes` one at a time, `gap` apart, until all are sent or the server has closed the
  // connection; meanwhile `others` requests are made to /ping. Returns how many bytes were sent
  // before the server closed (all of them when it never did).
  std::size_t trickle(std::string_view bytes, std::chrono::milliseconds gap, int* others_served) {
    RawConnection connection(server_->port());
    std::atomic<bool> done{false};
    std::thread others([&] {
      while (!done.load()) {
        http::Client client("127.0.0.1", server_->port(), 2s);
        *others_served += client.get("/ping").result() == Status::ok ? 1 : 0;
      }
    });
    std::size_t sent = 0;
    for (; sent < bytes.size(); ++sent) {
      std::string received;
      if (connection.closed_within(gap, &received)) break;
      if (!connection.send(bytes.substr(sent, 1))) break;
    }
    done.store(true);
    others.join();
    return sent;
  }

  std::unique_ptr<http::Server> server_;
};

TEST_F(SlowClientCutOff, ATrickledHeaderIsCutOffAtTheHeaderTimeoutWhileOthersAreServed) {
  // 200 bytes at 50 ms each would take 10 s; the header timeout (0.4 s after the first byte,
  // which ends the idle wait) cuts it off after about 8 bytes.
  const std::string header =
      "GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 's') + "\r\n\r\n";
  int others = 0;
  const std::size_t sent = trickle(header, 50ms, &others);
  EXPECT_LT(sent, header.size()) << "the slow header was never cut off";
  EXPECT_GT(others, 0) << "nobody else was served while it trickled";
  RecordProperty("bytes_before_cut_off", static_cast<int>(sent));
  RecordProperty("others_served", others);
}

TEST_F(SlowClientCutOff, ATrickledBodyIsCutOffAtTheBodyTimeoutWhileOthersAreServed) {
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n";
  RawConnection connection(server_->port());
  ASSERT_TRUE(connection.send(head));
  int others = 0;
  std::atomic<bool> done{false};
  std::thread served([&] {
    while (!done.load()) {
      http::Client client("127.0.0.1", server_->port(), 2s);
      others += client.get("/ping").result() == Status::ok ? 1 : 0;
    }
  });
  std::size_t sent = 0;
  for (; sent < 200; ++sent) {
    if (connection.closed_within(50ms)) break;
    if (!connection.send("b")) break;
  }
  done.store(true);
  served.join();
  EXPECT_LT(sent, 200u) << "the slow body was never cut off";
  EXPECT_GT(others, 0);
  RecordProperty("bytes_before_cut_off", static_cast<int>(sent));
}

TEST_F(SlowClientCutOff, ManySlowClientsAreAllCutOff) {
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(slow.back()->send(i % 2 == 0
                                      ? "GET /ping HTTP/1.1\r\nHost: x\r\nX-A: "
                                      : "POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\nab"));
  }
  http::Client client("127.0.0.1", server_->port());
  EXPECT_EQ(client.get("/ping").result(), Status::ok);
  int closed = 0;
  for (auto& connection : slow) closed += connection->closed_within(5000ms) ? 1 : 0;
  EXPECT_EQ(closed, 50);
  EXPECT_TRUE(wait_until([&] { return server_->connections() <= 1; }, 5s))
      << server_->connections() << " connections left open";
}

}  // namespace
}  // namespace keel::testing
