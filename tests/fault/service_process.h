// ServiceProcess: one keel service binary (keel-shortener, keel-notifier) run by a fault test,
// which starts it, kills it with SIGKILL under load and starts it again on the same storage.
//
// Each start takes a fresh free loopback port (a killed server's port may linger in TIME_WAIT)
// and a fresh log file, and waits until /healthz answers 200.
//
// Thread safety: start() and kill() from the test's thread; port() from any thread once started.
#pragma once

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/http/client.h"
#include "tests/support/free_port.h"
#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/wait.h"

namespace keel::testing {

class ServiceProcess {
 public:
  // `argv` is the binary and its flags, without --listen.
  ServiceProcess(std::string name, std::vector<std::string> argv, std::filesystem::path dir)
      : name_(std::move(name)), argv_(std::move(argv)), dir_(std::move(dir)) {}

  // Starts the service and waits (at most 30 s) for /healthz. Throws std::runtime_error with the
  // tail of its log when it exits or does not become healthy. A port taken by another test
  // between choosing it and binding it is retried on another (launch_on_free_port).
  void start() {
    log_ = dir_ / fmt::format("{}.{}.log", name_, ++starts_);
    LaunchedServer launched = launch_on_free_port({
        .name = name_,
        .argv =
            [&](std::uint16_t port) {
              std::vector<std::string> argv = argv_;
              argv.insert(argv.end(), {"--listen", fmt::format("127.0.0.1:{}", port)});
              return argv;
            },
        .log_file = log_,
        .run_as_user = std::nullopt,
        .ready =
            [](std::uint16_t port) {
              try {
                return http::Client("127.0.0.1", port, std::chrono::seconds(1))
                           .get("/healthz")
                           .result() == http::Status::ok;
              } catch (const std::exception&) {
                return false;
              }
            },
        .timeout = std::chrono::seconds(30),
    });
    process_ = std::move(launched.process);
    port_.store(launched.port);
  }

  // SIGKILL: no shutdown code runs, as when the machine's OOM killer or an operator's kill -9
  // takes the process.
  void kill() { process_.stop(SIGKILL, std::chrono::seconds(5)); }

  // SIGTERM, and it must exit by itself within 10 s.
  bool stop() {
    process_.stop(SIGTERM, std::chrono::seconds(10));
    return process_.wait_status() && WIFEXITED(*process_.wait_status()) &&
           WEXITSTATUS(*process_.wait_status()) == 0;
  }

  pid_t pid() const noexcept { return process_.pid(); }
  // "running", or how the process ended (for failure messages).
  std::string state() {
    if (process_.running()) return "running";
    return process_.wait_status() ? describe_wait_status(*process_.wait_status()) : "not started";
  }
  std::uint16_t port() const { return port_.load(); }
  const std::filesystem::path& log() const { return log_; }
  int starts() const { return starts_; }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::filesystem::path dir_;
  std::filesystem::path log_;
  int starts_ = 0;
  ChildProcess process_;
  std::atomic<std::uint16_t> port_{0};
};

}  // namespace keel::testing
