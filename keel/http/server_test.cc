// keel::http::Server over real loopback sockets: routing, errors, limits, timeouts against slow
// clients, HEAD, health, metrics and graceful shutdown. The timeouts are Asio's (real time): the
// tests set them to a fraction of a second and wait for their effect with a bounded deadline.
#include "keel/http/server.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "keel/http/client.h"

namespace keel::http {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Router test_router() {
  Router router;
  router.add(Method::get, "/hello/{name}", [](Request& r) {
    return json_response(Status::ok, {{"hello", r.param("name")},
                                      {"client", r.client_address.to_string()}});
  });
  router.add(Method::post, "/echo", [](Request& r) {
    return json_response(Status::created, r.json());
  });
  router.add(Method::get, "/teapot", [](Request&) -> Response {
    throw HttpError(Status::conflict, "alias_taken", "the alias is taken");
  });
  router.add(Method::get, "/crash", [](Request&) -> Response {
    throw std::runtime_error("database password is hunter2");  // never shown to the client
  });
  return router;
}

// A raw connection, for what a well-behaved client would not send.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Everything until the server closes the connection (or `limit` passes: then throws).
  std::string read_until_closed(std::chrono::seconds limit = 10s) {
    auto result = std::async(std::launch::async, [this] {
      std::string all;
      std::array<char, 4096> chunk{};
      boost::system::error_code ec;
      for (;;) {
        const std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
        all.append(chunk.data(), n);
        if (ec) return all;
      }
    });
    if (result.wait_for(limit) != std::future_status::ready) {
      socket_.close();
      throw std::runtime_error("the server did not close the connection");
    }
    return result.get();
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
};

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.metrics = &metrics_;
    server_ = std::make_unique<Server>(test_router(), std::move(options));
    server_->start();
  }
  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, RoutesRequestsOverOneKeptAliveConnection) {
  start();
  Client client("127.0.0.1", server_->port());
  for (int i = 0; i < 3; ++i) {
    const Response r = client.get(fmt::format("/hello/ada{}", i));
    EXPECT_EQ(r.result(), Status::ok);
    const auto body = boost::json::parse(r.body());
    EXPECT_EQ(body.at("hello").as_string(), fmt::format("ada{}", i));
    EXPECT_EQ(body.at("client").as_string(), "127.0.0.1");
    EXPECT_EQ(r[Field::server], "keel");
    EXPECT_TRUE(r.keep_alive());
  }
  EXPECT_EQ(server_->connections(), 1u);
  EXPECT_EQ(server_->requests(), 3u);
  const Response echo = client.request(Method::post, "/echo", R"({"a":[1,2]})");
  EXPECT_EQ(echo.result(), Status::created);
  EXPECT_EQ(boost::json::parse(echo.body()), boost::json::parse(R"({"a":[1,2]})"));
}

TEST_F(ServerTest, ErrorsAreJsonAndInternalDetailsStayInside) {
  start();
  Client client("127.0.0.1", server_->port());
  const Response bad_json = client.request(Method::post, "/echo", "{oops");
  EXPECT_EQ(bad_json.result(), Status::bad_request);
  EXPECT_THAT(bad_json.body(), HasSubstr(R"("code":"invalid_json")"));
  const Response conflict = client.get("/teapot");
  EXPECT_EQ(conflict.result(), Status::conflict);
  EXPECT_THAT(conflict.body(), HasSubstr(R"("code":"alias_taken")"));
  const Response crash = client.get("/crash");
  EXPECT_EQ(crash.result(), Status::internal_server_error);
  EXPECT_THAT(crash.body(), ::testing::Not(HasSubstr("hunter2")));
  EXPECT_EQ(client.get("/nowhere").result(), Status::not_found);
  EXPECT_EQ(client.request(Method::delete_, "/echo").result(), Status::method_not_allowed);
}

TEST_F(ServerTest, HeadSendsTheHeadersOfGetWithoutTheBody) {
  start();
  Client client("127.0.0.1", server_->port());
  const Response get = client.get("/hello/x");
  const Response head = client.request(Method::head, "/hello/x");
  EXPECT_EQ(head.result(), Status::ok);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(head[Field::content_length], std::to_string(get.body().size()));
  EXPECT_EQ(client.get("/hello/y").result(), Status::ok);  // the connection is still in step
}

TEST_F(ServerTest, OversizedBodiesGet413AndOversizedHeaders431) {
  start({.max_header_bytes = 1024, .max_body_bytes = 1000});
  {
    Client client("127.0.0.1", server_->port());
    const Response r = client.request(Method::post, "/echo", std::string(5000, 'x'));
    EXPECT_EQ(r.result(), Status::payload_too_large);
    EXPECT_THAT(r.body(), HasSubstr(R"("code":"body_too_large")"));
    EXPECT_FALSE(r.keep_alive());
  }
  {
    Client client("127.0.0.1", server_->port());
    const Response r =
        client.request(Method::get, "/hello/x", {}, {{"X-Big", std::string(4000, 'h')}});
    EXPECT_EQ(r.result(), Status::request_header_fields_too_large);
  }
  {
    // A body announced too large is refused before it is sent.
    RawConnection raw(server_->port());
    raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n");
    EXPECT_THAT(raw.read_until_closed(), HasSubstr("413 Payload Too Large"));
  }
}

// Found by fuzz/http_server_fuzzer.cc (fuzz/corpus/http_server/head_header_too_large): a HEAD
// refused with 431 or 413 carried the JSON error as a body, which a client reads as the start of
// the next response (a response to HEAD ends with its header, RFC 9112 6.3).
TEST_F(ServerTest, ARefusedHeadGetsTheStatusWithoutABody) {
  start({.max_header_bytes = 1024, .max_body_bytes = 1000});
  for (const std::string& request :
       {"HEAD /hello/x HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'h') + "\r\n\r\n",
        std::string("HEAD /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")}) {
    RawConnection raw(server_->port());
    raw.send(request);
    const std::string reply = raw.read_until_closed();
    EXPECT_THAT(reply, ::testing::AnyOf(HasSubstr("431 Request Header Fields Too Large"),
                                        HasSubstr("413 Payload Too Large")));
    EXPECT_THAT(reply, ::testing::EndsWith("\r\n\r\n")) << "a body after the header: " << reply;
  }
}

TEST_F(ServerTest, ASlowClientIsCutOffWithoutHoldingUpOthers) {
  start({.threads = 1, .idle_timeout = 300ms, .header_timeout = 300ms});
  RawConnection slow(server_->port());
  slow.send("GET /hello/x HTTP/1.1\r\nHost: x\r\nX-Slow: ");  // and never more
  // The single I/O thread still serves others meanwhile.
  Client client("127.0.0.1", server_->port());
  EXPECT_EQ(client.get("/hello/fast").result(), Status::ok);
  EXPECT_EQ(slow.read_until_closed(), "");  // closed, nothing sent

  RawConnection idle(server_->port());  // connects and sends nothing
  EXPECT_EQ(idle.read_until_closed(), "");
}

TEST_F(ServerTest, AClientReconnectsAfterTheIdleTimeoutClosedItsConnection) {
  start({.idle_timeout = 200ms});
  Client client("127.0.0.1", server_->port());
  EXPECT_EQ(client.get("/hello/a").result(), Status::ok);
  RawConnection probe(server_->port());
  EXPECT_EQ(probe.read_until_closed(), "");  // the idle timeout has passed for both
  EXPECT_EQ(client.get("/hello/b").result(), Status::ok);
}

TEST_F(ServerTest, GarbageGets400AndTheConnectionCloses) {
  start();
  RawConnection raw(server_->port());
  raw.send("\x01\x02 not http at all\r\n\r\n");
  EXPECT_THAT(raw.read_until_closed(), HasSubstr("400 Bad Request"));
  Client client("127.0.0.1", server_->port());
  EXPECT_EQ(client.get("/hello/still-up").result(), Status::ok);
}

TEST_F(ServerTest, HealthAndMetrics) {
  start();
  Client client("127.0.0.1", server_->port());
  EXPECT_EQ(client.get("/healthz").result(), Status::ok);
  server_->set_ready(false);
  EXPECT_EQ(client.get("/healthz").result(), Status::service_unavailable);
  server_->set_ready(true);
  client.get("/nowhere");
  const Response metrics = client.get("/metrics");
  EXPECT_EQ(metrics.result(), Status::ok);
  EXPECT_THAT(metrics.body(), HasSubstr(R"(http_requests_total{method="GET",status="404"} 1)"));
  EXPECT_THAT(metrics.body(), HasSubstr(R"(http_requests_total{method="GET",status="503"} 1)"));
  EXPECT_THAT(metrics.body(), HasSubstr("http_request_duration_seconds_count"));
}

TEST_F(ServerTest, StopLetsTheRequestInProgressFinish) {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  Router router;
  router.add(Method::get, "/slow", [&](Request&) {
    entered.set_value();
    released.wait();
    return text_response(Status::ok, "done");
  });
  Server server(std::move(router), {.threads = 2});
  server.start();
  auto response = std::async(std::launch::async, [port = server.port()] {
    Client client("127.0.0.1", port);
    return client.get("/slow");
  });
  entered.get_future().wait();
  auto stopped = std::async(std::launch::async, [&] { server.stop(10s); });
  EXPECT_EQ(stopped.wait_for(100ms), std::future_status::timeout);  // waits for the request
  release.set_value();
  const Response r = response.get();
  EXPECT_EQ(r.result(), Status::ok);
  EXPECT_EQ(r.body(), "done");
  EXPECT_FALSE(r.keep_alive());  // the server is going away
  stopped.get();
  EXPECT_THROW(RawConnection{server.port()}, boost::system::system_error);  // no longer listening
}

TEST(HttpServer, StopFromAHandlerIsRefusedInsteadOfDeadlocking) {
  Server* self = nullptr;
  Router router;
  router.add(Method::get, "/stop", [&](Request&) {
    try {
      self->stop();
      return text_response(Status::ok, "stopped?");
    } catch (const std::logic_error&) {
      return text_response(Status::conflict, "refused");
    }
  });
  Server server(std::move(router), {.threads = 1});
  self = &server;
  server.start();
  Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.get("/stop").body(), "refused");
  server.stop();
}

TEST(HttpServer, RefusesBadOptionsAndABusyPort) {
  EXPECT_THROW(Server(Router{}, {.threads = 0}), std::invalid_argument);
  EXPECT_THROW(Server(Router{}, {.max_body_bytes = 0}), std::invalid_argument);
  EXPECT_THROW(Server(Router{}, {.header_timeout = 0s}), std::invalid_argument);
  Server first(Router{});
  first.start();
  Server second(Router{}, {.port = first.port()});
  EXPECT_THROW(second.start(), boost::system::system_error);
  EXPECT_THROW(first.start(), std::logic_error);
}

}  // namespace
}  // namespace keel::http
