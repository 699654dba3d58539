// Running other programs from tests: short commands whose output is captured (run_command) and
// long-running servers owned by a test fixture (ChildProcess).
//
// Both resolve the program in the parent, pass every setup failure in the child (redirection,
// credentials, exec) back to the parent, and ask the kernel to signal the child when the test
// process dies, so a crashed or killed test does not leave servers behind.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/wait.h"

namespace keel::testing {

struct CommandResult {
  // The program's exit status; 128 + N when killed by signal N; 127 when it could not be run.
  int exit_code;
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH unless it contains a '/') with `argv`, feeds it `stdin_data`
// and waits for it to finish, capturing stdout and stderr in full. When `run_as_user` is set and
// the test runs as root, the command runs as that user (PostgreSQL's initdb refuses root).
// When the program cannot be executed, returns exit_code 127 with the reason in `err`.
// Throws std::runtime_error when `run_as_user` names no user, std::system_error on OS failures.
// Thread safety: safe to call from any thread.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_data = {},
                          const std::optional<std::string>& run_as_user = {});

// The first executable file called `name` in PATH, then in `fallback_dirs` (which covers sbin
// directories missing from a test runner's PATH).
std::optional<std::filesystem::path> find_program(
    std::string_view name, const std::vector<std::filesystem::path>& fallback_dirs = {});

// A user's ids, looked up with the thread-safe getpwnam_r; nullopt when there is no such user.
struct UserIds {
  uid_t uid;
  gid_t gid;
};
std::optional<UserIds> find_user(const std::string& name);

// "exited with code 3" / "killed by signal 9 (Killed)", for failure messages.
std::string describe_wait_status(int wait_status);

// The last `max_bytes` of a file (a server log), for failure messages; never throws.
std::string tail_of_file(const std::filesystem::path& file, std::size_t max_bytes = 4000);

// ChildProcess: a long-running program (a database server) owned by a test fixture.
//
// The child runs in its own process group with stdout and stderr appended to a log file, and gets
// SIGTERM if the thread that spawned it dies. stop() (also run by the destructor) signals it,
// waits for it to exit and SIGKILLs the whole process group if it does not. A default-constructed
// or moved-from ChildProcess owns nothing.
//
// Thread safety: not thread-safe; owned and used by one fixture. Move-only.
class ChildProcess {
 public:
  // Starts argv[0] (looked up in PATH unless it contains a '/'). The log file is truncated.
  // When `run_as_user` is set and the test runs as root, the child switches to that user (and
  // its groups) before exec. Throws std::runtime_error naming the program when it cannot be
  // started (not found, not executable, unknown user, unwritable log file).
  static ChildProcess spawn(const std::vector<std::string>& argv,
                            const std::filesystem::path& log_file,
                            const std::optional<std::string>& run_as_user = {});

  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The child's PID, which is also its process group id; -1 when this owns nothing.
  pid_t pid() const noexcept { return pid_; }

  // True while the child has not exited. Collects its exit status once it has.
  bool running() noexcept;

  // Sends `signal` to the child, waits up to `grace` for it to exit, then SIGKILLs its process
  // group. Anything else left in the group is killed too. No-op once the child has exited.
  void stop(int signal = SIGTERM, Duration grace = std::chrono::seconds(10)) noexcept;

  // SIGKILLs the child's whole process group at once and collects the child: a crash of a server
  // that forks workers (PostgreSQL's backends), none of which gets to clean up or outlive it.
  // No-op once the child has exited.
  void kill_group() noexcept;

  // The raw waitpid() status once the child has exited and been collected.
  std::optional<int> wait_status() const noexcept { return wait_status_; }

 private:
  explicit ChildProcess(pid_t pid) noexcept : pid_(pid) {}
  // Collects the child if it has exited; blocks until it does when `block`.
  void reap(bool block) noexcept;

  pid_t pid_ = -1;
  std::optional<int> wait_status_;
};

}  // namespace keel::testing
