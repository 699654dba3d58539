// The connection pool against a scripted fake server, for what a real redis-server does not do
// on request: reset a connection it had half-closed.
#include "keel/redis/internal/connection_pool.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <future>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

namespace keel::redis::internal {
namespace {

// A listening socket on 127.0.0.1 that answers one PING per accepted connection.
class FakeServer {
 public:
  FakeServer() : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener_ < 0 || ::bind(listener_, as_sockaddr(&address), length) != 0 ||
        ::listen(listener_, 4) != 0 || ::getsockname(listener_, as_sockaddr(&address), &length)) {
      throw std::system_error(errno, std::generic_category(), "fake server");
    }
    port_ = ntohs(address.sin_port);
  }
  ~FakeServer() { ::close(listener_); }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::uint16_t port() const { return port_; }

  // Accepts a connection and answers its PING; returns the connection.
  int accept_and_pong() const {
    const int connection = ::accept(listener_, nullptr, nullptr);
    std::string received;
    std::array<char, 256> buffer{};
    while (received.find("PING\r\n") == std::string::npos) {
      const ssize_t n = ::read(connection, buffer.data(), buffer.size());
      if (n <= 0) break;
      received.append(buffer.data(), static_cast<std::size_t>(n));
    }
    constexpr std::string_view kPong = "+PONG\r\n";
    if (::write(connection, kPong.data(), kPong.size()) < 0) ADD_FAILURE() << "cannot answer";
    return connection;
  }

  // Half-closes (FIN), then resets (RST): the client's socket is left with EPIPE pending, so
  // that its next write(2) raises SIGPIPE.
  static void finish_then_reset(int connection) {
    ::shutdown(connection, SHUT_WR);
    const linger reset{1, 0};
    ::setsockopt(connection, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    ::close(connection);
  }

 private:
  static sockaddr* as_sockaddr(sockaddr_in* address) {
    return reinterpret_cast<sockaddr*>(address);  // the sockets API takes sockaddr*
  }

  int listener_;
  std::uint16_t port_ = 0;
};

TEST(RedisConnectionPoolTest, AResetIdleConnectionNeitherRaisesSigpipeNorFails) {
  const auto previous = std::signal(SIGPIPE, SIG_DFL);  // SIGPIPE would end this process
  FakeServer server;
  ConnectionOptions options;
  options.port = server.port();
  options.pool_size = 1;
  ConnectionPool pool(options);

  std::promise<void> first_answered;
  std::promise<void> reset_done;
  std::thread fake([&] {
    FakeServer::finish_then_reset(([&] {
      const int connection = server.accept_and_pong();
      first_answered.get_future().wait();
      return connection;
    })());
    reset_done.set_value();
    ::close(server.accept_and_pong());  // the command sent again on a new connection
  });

  constexpr std::array<std::string_view, 1> kPing{"PING"};
  EXPECT_EQ(reply_text(*pool.command(kPing)), "PONG");
  first_answered.set_value();
  reset_done.get_future().wait();
  EXPECT_EQ(reply_text(*pool.command(kPing)), "PONG") << "sent again after the reset";
  EXPECT_EQ(pool.failures(), 1U);
  fake.join();
  std::signal(SIGPIPE, previous);
}

}  // namespace
}  // namespace keel::redis::internal
