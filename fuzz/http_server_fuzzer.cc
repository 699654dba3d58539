// The HTTP request path of keel/http: raw bytes from a client to a running keel::http::Server.
//
// One server (started once, on 127.0.0.1 with a small router and small limits so that 413 and
// 431 are reachable) serves every input. Per input: connect, write the bytes, half-close, read
// until the server closes (3 s at most).
// Checked: the server answers with well-formed HTTP/1.x responses — the first parses as a whole
// (status line, headers, a body that agrees with its framing) with a status the router or the
// server's refusals can give (never a 5xx: no handler here fails) — or closes without a word;
// it never keeps a half-closed connection open; and every 64 inputs it still answers
// GET /healthz with 200 and has no connection left open from the inputs before.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "fuzz/check.h"
#include "keel/core/encoding.h"
#include "keel/http/server.h"

namespace {

namespace http = keel::http;
using namespace std::chrono_literals;

constexpr auto kReadDeadline = 3s;
constexpr std::size_t kCheckEvery = 64;
constexpr std::size_t kMaxHeaderBytes = 1024;

http::Router make_router() {
  http::Router router;
  router.add(http::Method::get, "/hello",
             [](http::Request&) { return http::text_response(http::Status::ok, "hello\n"); });
  router.add(http::Method::post, "/echo",
             [](http::Request& r) { return http::text_response(http::Status::ok, r.body()); });
  router.add(http::Method::get, "/items/{id}", [](http::Request& r) {
    return http::json_response(http::Status::ok, {{"id", r.param("id")}});
  });
  router.add(http::Method::post, "/json",
             [](http::Request& r) { return http::json_response(http::Status::created, r.json()); });
  router.add(http::Method::delete_, "/items/{id}",
             [](http::Request&) { return http::text_response(http::Status::no_content, ""); });
  return router;
}

http::Server& server() {
  static http::Server* const instance = [] {
    auto* s = new http::Server(make_router(), {.host = "127.0.0.1",
                                               .port = 0,
                                               .threads = 2,
                                               .max_header_bytes = kMaxHeaderBytes,
                                               .max_body_bytes = 1024,
                                               .idle_timeout = 1s,
                                               .header_timeout = 1s,
                                               .body_timeout = 1s,
                                               .write_timeout = 1s});
    s->start();
    return s;
  }();
  return *instance;
}

class Socket {
 public:
  explicit Socket(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    KEEL_FUZZ_CHECK(fd_ >= 0, "socket(): errno {}", errno);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    KEEL_FUZZ_CHECK(rc == 0, "connect to the server: errno {}", errno);
  }
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Writes what the peer takes (it may close early, after refusing the request).
  void write_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void half_close() { ::shutdown(fd_, SHUT_WR); }

  // Everything until the peer closes (a reset counts as a close); nullopt past the deadline.
  std::optional<std::string> read_to_close() {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + kReadDeadline;
    char buffer[4096];
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return out;
      out.append(buffer, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
};

bool known_status(unsigned status) {
  switch (status) {
    case 200:
    case 201:
    case 204:  // the routes
    case 400:
    case 404:
    case 405:  // bad request, no route, wrong method
    case 413:
    case 431:  // the server's refusals
      return true;
    default:
      return false;
  }
}

// Whether the input begins with a HEAD request line: then the response has no body, whatever
// its Content-Length says (RFC 9112, 6.3), whether the server served or refused the request (a
// client that sent HEAD reads it so). Parsed as the server does, with its header limit: a
// request line that does not parse, or does not fit, is no HEAD request.
bool first_request_is_head(std::string_view request) {
  namespace beast = boost::beast;
  beast::http::request_parser<beast::http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
  parser.eager(false);
  beast::error_code ec;
  parser.put(boost::asio::buffer(request.data(), request.size()), ec);
  return parser.get().method() == beast::http::verb::head;
}

// Parses the first response of `bytes`; returns how many bytes it took.
std::size_t check_first_response(std::string_view bytes, bool head, std::string_view request) {
  namespace beast = boost::beast;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.eager(true);
  parser.skip(head);
  parser.body_limit(1 << 20);
  beast::error_code ec;
  std::size_t used = 0;
  while (!parser.is_done() && used < bytes.size()) {
    const std::size_t n =
        parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == beast::http::error::need_more) ec = {};
    if (ec || n == 0) break;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  KEEL_FUZZ_CHECK(!ec && parser.is_done(), "the response to {} does not parse ({}): {}",
                  keel::quote_for_message(request), ec.message(), keel::quote_for_message(bytes));
  const auto& response = parser.get();
  KEEL_FUZZ_CHECK(response.version() == 11 || response.version() == 10, "HTTP version {}",
                  response.version());
  KEEL_FUZZ_CHECK(known_status(response.result_int()), "status {} for {}", response.result_int(),
                  keel::quote_for_message(request));
  return used;
}

void check_healthy() {
  http::Server& s = server();
  {
    Socket socket(s.port());
    socket.write_all("GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n");
    const std::optional<std::string> reply = socket.read_to_close();
    KEEL_FUZZ_CHECK(reply && reply->starts_with("HTTP/1.1 200 "), "GET /healthz answered {}",
                    keel::quote_for_message(reply.value_or("nothing")));
  }
  // Every connection of earlier inputs was closed by the client and must be gone soon.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (s.connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  KEEL_FUZZ_CHECK(s.connections() == 0, "{} connections still open", s.connections());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::size_t inputs = 0;
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  std::optional<std::string> reply;
  {
    Socket socket(server().port());
    socket.write_all(request);
    socket.half_close();
    reply = socket.read_to_close();
  }
  KEEL_FUZZ_CHECK(reply.has_value(), "the server kept a half-closed connection open for {}",
                  keel::quote_for_message(request));
  if (!reply->empty()) {
    const std::size_t used = check_first_response(*reply, first_request_is_head(request), request);
    const std::string_view more = std::string_view(*reply).substr(used);
    KEEL_FUZZ_CHECK(more.empty() || more.starts_with("HTTP/1."),
                    "bytes after the first response: {}", keel::quote_for_message(more));
  }
  if (++inputs % kCheckEvery == 0) check_healthy();
  return 0;
}
