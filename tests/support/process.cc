#include "tests/support/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace keel::testing {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Who the child becomes. Looked up in the parent: getpwnam() and initgroups() read files and
// allocate, which a child forked from a multithreaded process must not do.
struct Credentials {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

std::optional<Credentials> credentials_for(const std::optional<std::string>& user) {
  if (!user || ::geteuid() != 0) return std::nullopt;
  const auto ids = find_user(*user);
  if (!ids) throw std::runtime_error(fmt::format("cannot run as user '{}': no such user", *user));
  Credentials credentials{ids->uid, ids->gid, std::vector<gid_t>(32)};
  int count = static_cast<int>(credentials.groups.size());
  while (::getgrouplist(user->c_str(), ids->gid, credentials.groups.data(), &count) < 0) {
    credentials.groups.resize(static_cast<std::size_t>(count) + 1);
    count = static_cast<int>(credentials.groups.size());
  }
  credentials.groups.resize(static_cast<std::size_t>(count));
  return credentials;
}

// What the child does between fork and exec, decided in the parent.
struct ChildSetup {
  std::filesystem::path program;
  const std::vector<std::string>* argv;
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  bool own_process_group;
  std::optional<Credentials> credentials;
};

// The child's report of the step that failed, sent through a close-on-exec pipe: the parent
// reads nothing when exec succeeded.
enum class Step : int { kRedirect = 1, kProcessGroup, kCredentials, kDeathSignal, kExec };
struct ChildFailure {
  Step step;
  int error;
};

const char* describe(Step step) {
  switch (step) {
    case Step::kRedirect:
      return "redirecting stdin/stdout/stderr";
    case Step::kProcessGroup:
      return "creating a process group";
    case Step::kCredentials:
      return "switching user";
    case Step::kDeathSignal:
      return "setting the parent-death signal";
    case Step::kExec:
      return "exec";
  }
  return "?";
}

bool redirect(int from, int to) noexcept {
  if (from == to) {  // dup2 would keep FD_CLOEXEC set
    const int flags = ::fcntl(to, F_GETFD);
    return flags >= 0 && ::fcntl(to, F_SETFD, flags & ~FD_CLOEXEC) == 0;
  }
  return ::dup2(from, to) == to;
}

// Runs in the forked child: only async-signal-safe calls from here to exec.
[[noreturn]] void run_child(const ChildSetup& setup, char* const* argv, pid_t parent,
                            int report_fd) noexcept {
  auto fail = [report_fd](Step step) {
    const ChildFailure failure{step, errno};
    [[maybe_unused]] const auto ignored = ::write(report_fd, &failure, sizeof(failure));
    ::_exit(127);
  };
  // Signal state survives exec: a blocked or ignored SIGTERM in the test would make the server
  // unstoppable.
  sigset_t none;
  ::sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
  for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(sig, &dfl, nullptr);
  }
  if (setup.own_process_group && ::setpgid(0, 0) != 0) fail(Step::kProcessGroup);
  if (!redirect(setup.stdin_fd, STDIN_FILENO) || !redirect(setup.stdout_fd, STDOUT_FILENO) ||
      !redirect(setup.stderr_fd, STDERR_FILENO)) {
    fail(Step::kRedirect);
  }
  if (setup.credentials) {
    const Credentials& c = *setup.credentials;
    if (::setgroups(c.groups.size(), c.groups.data()) != 0 || ::setgid(c.gid) != 0 ||
        ::setuid(c.uid) != 0) {
      fail(Step::kCredentials);
    }
  }
  // After setuid, which clears the parent-death signal. If the parent died before prctl, no
  // signal will come: getppid() no longer names it, so stop here.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail(Step::kDeathSignal);
  if (::getppid() != parent) ::_exit(127);
  ::execv(setup.program.c_str(), argv);
  fail(Step::kExec);
  ::_exit(127);  // unreachable; fail() exits
}

// Forks and execs. Returns the child's PID, or the reason it could not be started (the child
// has then been collected).
struct SpawnOutcome {
  pid_t pid = -1;
  std::string error;
};

SpawnOutcome spawn_child(const ChildSetup& setup) {
  std::vector<char*> argv;
  for (const std::string& arg : *setup.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw_errno("pipe2");
  Fd report_read(report[0]);
  Fd report_write(report[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) run_child(setup, argv.data(), parent, report_write.get());

  report_write.reset();
  ChildFailure failure{};
  ssize_t got;
  do {
    got = ::read(report_read.get(), &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return {pid, {}};

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {-1, fmt::format("{} failed: {}", describe(failure.step),
                          std::system_category().message(failure.error))};
}

// The program to exec, or an explanation of why there is none.
std::optional<std::filesystem::path> resolve(const std::vector<std::string>& argv,
                                             std::string& error) {
  if (argv.empty() || argv.front().empty()) {
    error = "empty command line";
    return std::nullopt;
  }
  if (argv.front().find('/') != std::string::npos) return std::filesystem::path(argv.front());
  auto found = find_program(argv.front());
  if (!found) error = "not found in PATH";
  return found;
}

int open_or_throw(const std::filesystem::path& path, int flags, const char* purpose) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(fmt::format("cannot open {} '{}'", purpose, path.string()));
  return fd;
}

int memfd_or_throw(const char* name) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) throw_errno("memfd_create");
  return fd;
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write");
    done += static_cast<std::size_t>(n);
  }
}

std::string read_all_from_start(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) throw_errno("lseek");
  std::string data;
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read");
    if (n == 0) return data;
    data.append(buffer, static_cast<std::size_t>(n));
  }
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_data,
                          const std::optional<std::string>& run_as_user) {
  std::string error;
  const auto program = resolve(argv, error);
  const std::string name = argv.empty() ? std::string() : argv.front();
  if (!program) return {127, {}, fmt::format("cannot execute '{}': {}", name, error)};

  // Memory files rather than pipes: nothing to pump while waiting, so no deadlock however much
  // the command writes to either stream.
  Fd in(memfd_or_throw("keel-stdin"));
  Fd out(memfd_or_throw("keel-stdout"));
  Fd err(memfd_or_throw("keel-stderr"));
  write_all(in.get(), stdin_data);
  if (::lseek(in.get(), 0, SEEK_SET) < 0) throw_errno("lseek");

  const ChildSetup setup{.program = *program,
                         .argv = &argv,
                         .stdin_fd = in.get(),
                         .stdout_fd = out.get(),
                         .stderr_fd = err.get(),
                         .own_process_group = false,
                         .credentials = credentials_for(run_as_user)};
  const SpawnOutcome outcome = spawn_child(setup);
  if (outcome.pid < 0) {
    return {127, {}, fmt::format("cannot execute '{}': {}", name, outcome.error)};
  }
  int status = 0;
  while (::waitpid(outcome.pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  return {exit_code_of(status), read_all_from_start(out.get()), read_all_from_start(err.get())};
}

std::optional<std::filesystem::path> find_program(
    std::string_view name, const std::vector<std::filesystem::path>& fallback_dirs) {
  std::vector<std::filesystem::path> dirs;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing in the tests calls setenv.
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest(path);
    while (true) {
      const auto colon = rest.find(':');
      const auto entry = rest.substr(0, colon);
      dirs.emplace_back(entry.empty() ? std::string_view(".") : entry);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  dirs.insert(dirs.end(), fallback_dirs.begin(), fallback_dirs.end());
  for (const auto& dir : dirs) {
    const auto candidate = dir / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

namespace {
// sigdescr_np (glibc >= 2.32) is the thread-safe strsignal.
const char* signal_name(int sig) {
  const char* name = ::sigdescr_np(sig);
  return name != nullptr ? name : "unknown signal";
}
}  // namespace

std::string describe_wait_status(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exited with code {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    return fmt::format("killed by signal {} ({})", sig, signal_name(sig));
  }
  return fmt::format("wait status {:#x}", wait_status);
}

std::string tail_of_file(const std::filesystem::path& file, std::size_t max_bytes) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) return fmt::format("(cannot read {})", file.string());
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const std::size_t start = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string tail(size - start, '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  tail.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return start > 0 ? "..." + tail : tail;
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv,
                                 const std::filesystem::path& log_file,
                                 const std::optional<std::string>& run_as_user) {
  std::string error;
  const auto program = resolve(argv, error);
  const std::string name = argv.empty() ? std::string() : argv.front();
  if (!program) throw std::runtime_error(fmt::format("cannot start '{}': {}", name, error));

  try {
    Fd in(open_or_throw("/dev/null", O_RDONLY, "stdin"));
    Fd log(open_or_throw(log_file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, "log file"));
    const ChildSetup setup{.program = *program,
                           .argv = &argv,
                           .stdin_fd = in.get(),
                           .stdout_fd = log.get(),
                           .stderr_fd = log.get(),
                           .own_process_group = true,
                           .credentials = credentials_for(run_as_user)};
    SpawnOutcome outcome = spawn_child(setup);
    if (outcome.pid < 0) throw std::runtime_error(outcome.error);
    return ChildProcess(outcome.pid);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("cannot start '{}': {}", name, e.what()));
  }
}

ChildProcess::~ChildProcess() { stop(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), wait_status_(std::exchange(other.wait_status_, {})) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    wait_status_ = std::exchange(other.wait_status_, {});
  }
  return *this;
}

bool ChildProcess::running() noexcept {
  if (pid_ < 0 || wait_status_) return false;
  reap(false);
  return !wait_status_;
}

void ChildProcess::stop(int signal, Duration grace) noexcept {
  if (!running()) return;
  ::kill(pid_, signal);
  if (!wait_until([this] { return !running(); }, grace, std::chrono::milliseconds(10))) {
    ::kill(-pid_, SIGKILL);
    reap(true);
  }
}

void ChildProcess::kill_group() noexcept {
  if (!running()) return;
  ::kill(-pid_, SIGKILL);
  reap(true);
}

void ChildProcess::reap(bool block) noexcept {
  // Look without collecting first: while the child is an uncollected zombie its PID (our process
  // group id) cannot be reused, so killing what is left of the group cannot hit a stranger.
  siginfo_t info{};
  const int options = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, options);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {  // not our child any more (ECHILD): nothing to collect
    wait_status_ = 0;
    return;
  }
  if (info.si_pid == 0) return;  // still running

  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
}

std::optional<UserIds> find_user(const std::string& name) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return UserIds{entry.pw_uid, entry.pw_gid};
}

}  // namespace keel::testing
