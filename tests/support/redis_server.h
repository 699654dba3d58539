// RedisServer: a private redis-server for one test suite, on a free 127.0.0.1 port, with no
// persistence, in its own temporary directory. start() returns once a PING is answered; the
// destructor stops the server (SIGTERM, then SIGKILL after a grace period). stop() and
// start_again() take it down and back on the same port for fault tests; without persistence it
// comes back empty, as a cache or counter server restarted without its data does.
//
// Thread safety: the accessors are safe to call from any thread. Not copyable or movable; tests
// share one through a std::unique_ptr.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {

class RedisServer {
 public:
  // Throws std::runtime_error when redis-server is not installed (naming the Debian package),
  // cannot be started, or does not answer PING within 20 s (with the tail of its log).
  static std::unique_ptr<RedisServer> start();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::string host() const { return "127.0.0.1"; }
  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return process_.pid(); }

  // Stops the server and keeps its port and data directory: as a crash does (`crash`: SIGKILL
  // to the server and every process it started, nothing flushed) or as an operator does
  // (SIGTERM). Clients see their connections drop. No-op when already stopped.
  void stop(bool crash = false);
  // Starts the stopped server again on the same port and data directory and returns once a
  // client can use it. Throws std::runtime_error (with the log's tail) when it does not come up.
  void start_again();
  // stop(crash), then start_again().
  void restart(bool crash = false) {
    stop(crash);
    start_again();
  }
  std::filesystem::path log_file() const { return dir_.path() / "redis.log"; }

 private:
  RedisServer(TempDir dir, ServerLaunch launch, ChildProcess process, std::uint16_t port);

  TempDir dir_;          // declared first so that the server stops before its directory goes
  ServerLaunch launch_;  // how to start it again
  ChildProcess process_;
  std::uint16_t port_;
};

// The server shared by every test of the executable, started on first use and stopped at exit
// (tests keep apart by key prefix). Throws std::runtime_error with the reason the start failed,
// on every call, so that each test fails with it rather than skips.
RedisServer& shared_redis_server();

}  // namespace keel::testing
