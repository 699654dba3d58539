#include "tests/support/server_launch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tests/support/free_port.h"

namespace keel::testing {
namespace {

// Whether the log's tail holds `lower_case_text`, in any case.
bool log_says(const std::filesystem::path& log_file, std::string_view lower_case_text) {
  std::string log = tail_of_file(log_file, 16384);
  std::transform(log.begin(), log.end(), log.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return log.find(lower_case_text) != std::string::npos;
}

bool log_says_address_in_use(const std::filesystem::path& log_file) {
  return log_says(log_file, "address already in use");
}

std::string log_tail_message(const std::filesystem::path& log_file) {
  return fmt::format("; last lines of {}:\n{}", log_file.string(), tail_of_file(log_file));
}

}  // namespace

std::vector<std::filesystem::path> standard_program_dirs() {
  return {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"};
}

std::filesystem::path require_program(std::string_view program, std::string_view debian_package,
                                      const std::vector<std::filesystem::path>& fallback_dirs) {
  if (auto found = find_program(program, fallback_dirs)) return *found;
  throw std::runtime_error(
      fmt::format("{} not found: install the Debian package '{}' (scripts/bootstrap installs it)",
                  program, debian_package));
}

LaunchedServer launch_on_free_port(const ServerLaunch& launch, int retries) {
  for (int attempt = 0;; ++attempt) {
    const std::uint16_t port = free_loopback_port();
    ChildProcess process =
        ChildProcess::spawn(launch.argv(port), launch.log_file, launch.run_as_user);
    const bool settled = wait_until([&] { return !process.running() || launch.ready(port); },
                                    launch.timeout, std::chrono::milliseconds(20));
    if (process.running()) {
      if (settled) return {std::move(process), port};
      process.stop(SIGKILL, std::chrono::seconds(5));
      throw std::runtime_error(fmt::format(
          "{} did not accept connections on 127.0.0.1:{} within {} ms{}", launch.name, port,
          std::chrono::duration_cast<std::chrono::milliseconds>(launch.timeout).count(),
          log_tail_message(launch.log_file)));
    }
    if (attempt < retries && log_says_address_in_use(launch.log_file)) continue;
    throw std::runtime_error(fmt::format("{} {} during startup on port {}{}", launch.name,
                                         describe_wait_status(process.wait_status().value_or(0)),
                                         port, log_tail_message(launch.log_file)));
  }
}

ChildProcess launch_on_port(const ServerLaunch& launch, std::uint16_t port) {
  const auto deadline = std::chrono::steady_clock::now() + launch.timeout;
  while (true) {
    ChildProcess process =
        ChildProcess::spawn(launch.argv(port), launch.log_file, launch.run_as_user);
    const auto left = std::max<Duration>(deadline - std::chrono::steady_clock::now(),
                                         std::chrono::milliseconds(100));
    const bool settled = wait_until([&] { return !process.running() || launch.ready(port); }, left,
                                    std::chrono::milliseconds(20));
    if (process.running()) {
      if (settled) return process;
      process.stop(SIGKILL, std::chrono::seconds(5));
      throw std::runtime_error(fmt::format("{} did not accept connections again on 127.0.0.1:{}{}",
                                           launch.name, port, log_tail_message(launch.log_file)));
    }
    // What a crashed server leaves for a moment: its port, or (PostgreSQL) its shared memory
    // while the last of its orphaned children exit.
    if (std::chrono::steady_clock::now() < deadline &&
        (log_says_address_in_use(launch.log_file) ||
         log_says(launch.log_file, "pre-existing shared memory block"))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    throw std::runtime_error(fmt::format("{} {} during restart on port {}{}", launch.name,
                                         describe_wait_status(process.wait_status().value_or(0)),
                                         port, log_tail_message(launch.log_file)));
  }
}

}  // namespace keel::testing
