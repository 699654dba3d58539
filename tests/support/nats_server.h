// NatsServer: a private nats-server with JetStream for one test suite, on a free 127.0.0.1 port
// (no monitoring port), storing streams in a temporary directory. start() returns once a nats.c
// client connects; the destructor stops the server (SIGTERM, then SIGKILL after a grace period).
// stop() and start_again() take it down and back on the same port for fault tests; JetStream's
// streams and consumers survive in the directory.
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

class NatsServer {
 public:
  // Throws std::runtime_error when nats-server is not installed (naming the Debian package),
  // cannot be started, or does not accept a client within 20 s (with the tail of its log).
  static std::unique_ptr<NatsServer> start();

  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // "nats://127.0.0.1:<port>"
  std::string url() const;
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
  std::filesystem::path log_file() const { return dir_.path() / "nats.log"; }

 private:
  NatsServer(TempDir dir, ServerLaunch launch, ChildProcess process, std::uint16_t port);

  TempDir dir_;          // declared first so that the server stops before its directory goes
  ServerLaunch launch_;  // how to start it again
  ChildProcess process_;
  std::uint16_t port_;
};

}  // namespace keel::testing
