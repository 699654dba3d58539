#include "tests/abuse/service.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "keel/http/client.h"
#include "tests/support/free_port.h"
#include "tests/support/server_launch.h"
#include "tests/support/wait.h"

namespace keel::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

Service Service::start(std::vector<std::string> argv, const std::filesystem::path& log) {
  // launch_on_free_port retries a port another test took between choosing and binding it.
  LaunchedServer launched = launch_on_free_port({
      .name = argv.front(),
      .argv =
          [&](std::uint16_t port) {
            std::vector<std::string> full = argv;
            full.insert(full.end(), {"--listen", fmt::format("127.0.0.1:{}", port)});
            return full;
          },
      .log_file = log,
      .run_as_user = std::nullopt,
      .ready =
          [](std::uint16_t port) {
            try {
              return http::Client("127.0.0.1", port, 1s).get("/healthz").result() ==
                     http::Status::ok;
            } catch (const std::exception&) {
              return false;
            }
          },
      .timeout = 30s,
  });
  Service service;
  service.process = std::move(launched.process);
  service.port = launched.port;
  service.log = log;
  return service;
}

std::string Service::log_text() const {
  std::ifstream file(log, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

http::Response exchange_from(std::string_view source, std::uint16_t port, http::Method method,
                             std::string_view target, std::string body,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.open(tcp::v4());
  socket.bind(tcp::endpoint(asio::ip::make_address(std::string(source)), 0));
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::beast_http::request<http::beast_http::string_body> request(method, target, 11);
  request.set(http::Field::host, fmt::format("127.0.0.1:{}", port));
  for (const auto& [name, value] : headers) request.set(name, value);
  if (!body.empty() && !request.count(http::Field::content_type)) {
    request.set(http::Field::content_type, "application/json");
  }
  request.body() = std::move(body);
  request.prepare_payload();
  http::beast_http::write(socket, request);
  beast::flat_buffer buffer;
  http::Response response;
  http::beast_http::read(socket, buffer, response);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  return response;
}

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd_);
    throw std::system_error(error, std::generic_category(), "connect");
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawConnection::closed_within(std::chrono::milliseconds limit, std::string* received) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return true;  // end of file, or reset
    if (received != nullptr) received->append(chunk, static_cast<std::size_t>(n));
  }
}

std::string RawConnection::read_until_closed(std::chrono::milliseconds limit) {
  std::string received;
  if (!closed_within(limit, &received)) {
    throw std::runtime_error(
        fmt::format("the server did not close the connection within {} ms "
                    "(received so far: {})",
                    limit.count(), received));
  }
  return received;
}

}  // namespace keel::testing
