// Shared steps of the engine fixtures (RedisServer, PostgresServer, NatsServer): find the
// server's program, start it on a free loopback port and wait until it answers.
// Thread safety: reentrant; nothing is shared between calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace keel::testing {

// Directories Debian installs servers into that a test runner's PATH may lack.
std::vector<std::filesystem::path> standard_program_dirs();

// find_program(), or std::runtime_error("<program> not found: install the Debian package
// '<debian_package>' (scripts/bootstrap installs it)").
std::filesystem::path require_program(std::string_view program, std::string_view debian_package,
                                      const std::vector<std::filesystem::path>& fallback_dirs);

// How to start one server and tell that it is ready.
struct ServerLaunch {
  // For messages: "redis-server".
  std::string name;
  // The command line for a given port.
  std::function<std::vector<std::string>(std::uint16_t port)> argv;
  // Receives the server's stdout and stderr.
  std::filesystem::path log_file;
  // See ChildProcess::spawn.
  std::optional<std::string> run_as_user;
  // True once a client can use the server on `port`; must not throw.
  std::function<bool(std::uint16_t port)> ready;
  // How long the server may take to become ready.
  Duration timeout = std::chrono::seconds(20);
};

struct LaunchedServer {
  ChildProcess process;
  std::uint16_t port;
};

// Starts the server on a free loopback port and waits until `ready`. Another process can take
// the port between free_loopback_port() and the server's bind; when the server then exits saying
// "address already in use", this tries again on a new port, up to `retries` more times.
// Throws std::runtime_error with the log's tail when the server exits or is not ready in time.
LaunchedServer launch_on_free_port(const ServerLaunch& launch, int retries = 3);

// Starts the server again on `port` (a restart on the port its clients know) and waits until
// `ready`. While the port is still taken (by a process that has not let go of it yet), tries
// again until `launch.timeout` has passed. Throws std::runtime_error with the log's tail when
// the server exits for another reason or is not ready in time.
ChildProcess launch_on_port(const ServerLaunch& launch, std::uint16_t port);

}  // namespace keel::testing
