// keel::http::Server: an HTTP/1.1 server on Boost.Beast for keel's services.
//
//   Router router;
//   router.add(Method::get, "/hello", [](Request&) { return text_response(Status::ok, "hi"); });
//   Server server(std::move(router), {.port = 8080});
//   server.start();
//   ...
//   server.stop();   // graceful: in-flight requests finish, idle connections close
//
// A request that is not valid HTTP/1.1 gets 400 and the connection closes.
//
// What it does for every service built on it:
// - asynchronous I/O on `threads` threads, one strand per connection; keep-alive;
// - limits: headers over max_header_bytes → 431, bodies over max_body_bytes → 413 (before the
//   body is read), then the connection closes;
// - timeouts against slow or idle clients: a connection waits at most idle_timeout for the first
//   byte of a request, then header_timeout for the whole header (slowloris), body_timeout for
//   the body, write_timeout for the response — on expiry it is closed, and other clients never
//   wait for it;
// - handlers run on the connection's strand (a blocking handler holds one of the threads: size
//   `threads` for the handlers' blocking work, e.g. SQLite queries);
// - the client's address on each Request; HEAD served by GET handlers without the body;
// - /healthz (200 "ok", or 503 while set_ready(false) or stopping) and, with a MetricsRegistry,
//   /metrics in the Prometheus text format plus per-request counters and a latency histogram;
// - errors: a handler's HttpError becomes its JSON error; any other exception a 500 (logged).
//
// The timeouts run on Asio's steady timers, not on a keel Clock: they are about real sockets.
//
// Thread safety: start(), stop() and set_ready() may be called from any thread; the Router is
// read-only once the server starts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/http/router.h"

namespace keel::http {

struct ServerOptions {
  // Address to listen on. Default: loopback only.
  std::string host = "127.0.0.1";
  // 0 = a free port chosen by the kernel (read it back with port()).
  std::uint16_t port = 0;
  // I/O threads, which also run the handlers. REQUIRES: >= 1. Default: 2.
  std::size_t threads = 2;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  Duration idle_timeout = std::chrono::seconds(30);
  Duration header_timeout = std::chrono::seconds(10);
  Duration body_timeout = std::chrono::seconds(30);
  Duration write_timeout = std::chrono::seconds(30);
  // Connections beyond this are accepted and closed at once. Default: 10,000.
  std::size_t max_connections = 10'000;
  // When set, requests are counted in it and GET /metrics renders it. Must outlive the server.
  MetricsRegistry* metrics = nullptr;
  // The Server header. Default: "keel".
  std::string server_name = "keel";
};

class Server {
 public:
  // Throws std::invalid_argument for zero threads or limits, or non-positive timeouts.
  explicit Server(Router router, ServerOptions options = {});
  ~Server();  // stop(0 s)
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the threads. Throws std::system_error when the address cannot be bound,
  // std::logic_error when already started.
  void start();
  // The bound port (after start()).
  std::uint16_t port() const noexcept;
  // Stops accepting, lets the requests in progress finish for up to `grace`, then closes every
  // connection and joins the threads; a handler still running is waited for (handlers should
  // have their own timeouts). Idempotent. Throws std::logic_error when called from a handler
  // (one of the server's threads): it would wait for itself.
  void stop(Duration grace = std::chrono::seconds(5));

  // What /healthz answers: 200 when ready, 503 when not (e.g. while a dependency is down).
  void set_ready(bool ready) noexcept;

  // Connections open now and requests served so far.
  std::size_t connections() const noexcept;
  std::uint64_t requests() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace keel::http
