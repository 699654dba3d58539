// Tests of the test fixtures themselves. Suite names start with "Support" so that
// `ctest -R Support` selects them.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "tests/support/free_port.h"
#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

constexpr const char* kMissingProgram = "keel-no-such-program-4711";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// True once `pid` is gone or a zombie (a reparented zombie may wait for a busy or absent init).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string field;
  for (int i = 0; i < 3 && stat >> field; ++i) {
  }
  return field == "Z";
}

TEST(SupportRunCommandTest, CapturesStdoutStderrAndExitCode) {
  const CommandResult result = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.err, "err\n");
}

TEST(SupportRunCommandTest, FeedsStdin) {
  const CommandResult result = run_command({"cat"}, "line one\nline two\n");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out, "line one\nline two\n");
}

TEST(SupportRunCommandTest, CapturesLargeOutputOnBothStreamsWithoutDeadlock) {
  const CommandResult result = run_command(
      {"sh", "-c", "head -c 1000000 /dev/zero; head -c 700000 /dev/zero >&2; echo done"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out.size(), 1000005u);
  EXPECT_EQ(result.err.size(), 700000u);
}

TEST(SupportRunCommandTest, MissingProgramExitsWith127AndSaysWhy) {
  const CommandResult result = run_command({kMissingProgram, "--version"});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_THAT(result.err, HasSubstr(kMissingProgram));
}

TEST(SupportRunCommandTest, ProgramThatCannotBeExecutedExitsWith127) {
  const TempDir dir;
  const auto script = dir.path() / "not-executable";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  const CommandResult result = run_command({script.string()});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_THAT(result.err, HasSubstr("exec failed"));
}

TEST(SupportRunCommandTest, KilledCommandReports128PlusSignal) {
  EXPECT_EQ(run_command({"sh", "-c", "kill -KILL $$"}).exit_code, 128 + SIGKILL);
}

TEST(SupportRunCommandTest, RunsAsAnotherUserOnlyWhenRoot) {
  const auto nobody = find_user("nobody");
  ASSERT_TRUE(nobody.has_value()) << "the 'nobody' user is missing";
  const uid_t expected = ::geteuid() == 0 ? nobody->uid : ::geteuid();
  const CommandResult result = run_command({"id", "-u"}, {}, "nobody");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, std::to_string(expected) + "\n");
}

TEST(SupportRunCommandTest, UnknownUserThrowsWhenRoot) {
  if (::geteuid() != 0) {
    EXPECT_EQ(run_command({"true"}, {}, "keel-no-such-user").exit_code, 0);
    return;
  }
  EXPECT_THROW(run_command({"true"}, {}, "keel-no-such-user"), std::runtime_error);
}

TEST(SupportChildProcessTest, SpawnThrowsNamingAMissingProgram) {
  const TempDir dir;
  try {
    ChildProcess::spawn({kMissingProgram}, dir.path() / "log");
    FAIL() << "spawn of a missing program did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(kMissingProgram));
  }
}

TEST(SupportChildProcessTest, SpawnThrowsWhenExecFails) {
  const TempDir dir;
  const auto script = dir.path() / "not-executable";
  std::ofstream(script) << "#!/bin/sh\nsleep 60\n";
  try {
    ChildProcess::spawn({script.string()}, dir.path() / "log");
    FAIL() << "spawn of a non-executable file did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not-executable"));
    EXPECT_THAT(e.what(), HasSubstr("Permission denied"));
  }
}

TEST(SupportChildProcessTest, WritesStdoutAndStderrToTheLogFile) {
  const TempDir dir;
  const auto log = dir.path() / "child.log";
  ChildProcess child = ChildProcess::spawn({"sh", "-c", "echo hello; echo oops >&2"}, log);
  ASSERT_TRUE(wait_until([&] { return !child.running(); }, 10s));
  ASSERT_TRUE(child.wait_status().has_value());
  EXPECT_EQ(describe_wait_status(*child.wait_status()), "exited with code 0");
  EXPECT_EQ(read_file(log), "hello\noops\n");
}

TEST(SupportChildProcessTest, RunsInItsOwnProcessGroup) {
  const TempDir dir;
  ChildProcess child = ChildProcess::spawn({"sleep", "60"}, dir.path() / "log");
  EXPECT_EQ(::getpgid(child.pid()), child.pid());
}

TEST(SupportChildProcessTest, StopEndsAProcessThatExitsOnTheSignal) {
  const TempDir dir;
  ChildProcess child = ChildProcess::spawn({"sleep", "60"}, dir.path() / "log");
  ASSERT_TRUE(child.running());
  child.stop(SIGTERM, 10s);
  EXPECT_FALSE(child.running());
  ASSERT_TRUE(child.wait_status().has_value());
  EXPECT_TRUE(WIFSIGNALED(*child.wait_status()) && WTERMSIG(*child.wait_status()) == SIGTERM)
      << describe_wait_status(*child.wait_status());
}

TEST(SupportChildProcessTest, StopKillsAProcessGroupThatIgnoresSigterm) {
  const TempDir dir;
  const auto log = dir.path() / "child.log";
  // The background sleep inherits the ignored SIGTERM: only the group-wide SIGKILL ends it.
  ChildProcess child =
      ChildProcess::spawn({"sh", "-c", "trap '' TERM; sleep 60 & echo $!; wait"}, log);
  ASSERT_TRUE(wait_until([&] { return read_file(log).find('\n') != std::string::npos; }, 10s))
      << "the child never reported its background process";
  const pid_t sleeper = std::stoi(read_file(log));

  child.stop(SIGTERM, 200ms);

  EXPECT_FALSE(child.running());
  ASSERT_TRUE(child.wait_status().has_value());
  EXPECT_TRUE(WIFSIGNALED(*child.wait_status()) && WTERMSIG(*child.wait_status()) == SIGKILL)
      << describe_wait_status(*child.wait_status());
  EXPECT_TRUE(wait_until([&] { return process_gone(sleeper); }, 10s))
      << "the background process " << sleeper << " survived stop()";
}

TEST(SupportChildProcessTest, KillGroupKillsTheChildAndItsGroupAtOnce) {
  const TempDir dir;
  const auto log = dir.path() / "child.log";
  ChildProcess child = ChildProcess::spawn({"sh", "-c", "sleep 60 & echo $!; wait"}, log);
  ASSERT_TRUE(wait_until([&] { return read_file(log).find('\n') != std::string::npos; }, 10s))
      << "the child never reported its background process";
  const pid_t sleeper = std::stoi(read_file(log));

  child.kill_group();  // a crash: no SIGTERM first, no grace period

  EXPECT_FALSE(child.running());
  ASSERT_TRUE(child.wait_status().has_value());
  EXPECT_TRUE(WIFSIGNALED(*child.wait_status()) && WTERMSIG(*child.wait_status()) == SIGKILL)
      << describe_wait_status(*child.wait_status());
  EXPECT_TRUE(wait_until([&] { return process_gone(sleeper); }, 10s))
      << "the background process " << sleeper << " survived kill_group()";
}

TEST(SupportChildProcessTest, DestructorStopsTheChild) {
  const TempDir dir;
  pid_t pid = -1;
  {
    ChildProcess child = ChildProcess::spawn({"sleep", "60"}, dir.path() / "log");
    pid = child.pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(SupportChildProcessTest, MoveTransfersOwnership) {
  const TempDir dir;
  ChildProcess first = ChildProcess::spawn({"sleep", "60"}, dir.path() / "log");
  const pid_t pid = first.pid();
  ChildProcess second = std::move(first);
  EXPECT_EQ(first.pid(), -1);  // NOLINT(bugprone-use-after-move): documented moved-from state
  EXPECT_FALSE(first.running());
  EXPECT_EQ(second.pid(), pid);
  EXPECT_TRUE(second.running());
}

TEST(SupportServerLaunchTest, RequireProgramNamesTheDebianPackage) {
  try {
    require_program(kMissingProgram, "keel-package", {});
    FAIL() << "require_program found a missing program";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              std::string(kMissingProgram) +
                  " not found: install the Debian package 'keel-package' (scripts/bootstrap "
                  "installs it)");
  }
}

TEST(SupportServerLaunchTest, RetriesOnANewPortWhenTheAddressIsInUse) {
  const TempDir dir;
  int attempts = 0;
  const ServerLaunch launch{
      .name = "fake-server",
      .argv =
          [&](std::uint16_t) {
            ++attempts;
            return attempts <= 3 ? std::vector<std::string>{"sh", "-c",
                                                            "echo 'bind: Address already in use'; "
                                                            "exit 1"}
                                 : std::vector<std::string>{"sleep", "60"};
          },
      .log_file = dir.path() / "log",
      .run_as_user = std::nullopt,
      .ready = [&](std::uint16_t) { return attempts == 4; },
      .timeout = 10s};
  const LaunchedServer server = launch_on_free_port(launch);
  EXPECT_EQ(attempts, 4) << "three ports in use, then one that works";
  EXPECT_NE(server.port, 0);
}

TEST(SupportServerLaunchTest, RestartWaitsOnTheSamePortWhileItIsStillTaken) {
  const TempDir dir;
  int attempts = 0;
  std::vector<std::uint16_t> ports;
  const ServerLaunch launch{
      .name = "fake-server",
      .argv =
          [&](std::uint16_t port) {
            ++attempts;
            ports.push_back(port);
            // A crashed PostgreSQL's children hold its shared memory for a moment.
            return attempts <= 2 ? std::vector<std::string>{"sh", "-c",
                                                            "echo 'FATAL:  pre-existing shared "
                                                            "memory block is still in use'; exit 1"}
                                 : std::vector<std::string>{"sleep", "60"};
          },
      .log_file = dir.path() / "log",
      .run_as_user = std::nullopt,
      .ready = [&](std::uint16_t) { return attempts == 3; },
      .timeout = 10s};
  ChildProcess server = launch_on_port(launch, 4711);
  EXPECT_TRUE(server.running());
  EXPECT_EQ(ports, (std::vector<std::uint16_t>{4711, 4711, 4711})) << "always the same port";
}

TEST(SupportServerLaunchTest, RestartThatFailsForAnotherReasonThrowsWithTheLogTail) {
  const TempDir dir;
  const ServerLaunch launch{
      .name = "fake-server",
      .argv =
          [](std::uint16_t) {
            return std::vector<std::string>{"sh", "-c", "echo 'data directory damaged'; exit 3"};
          },
      .log_file = dir.path() / "log",
      .run_as_user = std::nullopt,
      .ready = [](std::uint16_t) { return false; },
      .timeout = 10s};
  try {
    launch_on_port(launch, 4711);
    FAIL() << "a server that exits at restart was reported as started";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("fake-server exited with code 3 during restart on port 4711"));
    EXPECT_THAT(e.what(), HasSubstr("data directory damaged"));
  }
}

TEST(SupportServerLaunchTest, ExitDuringStartupThrowsWithTheLogTail) {
  const TempDir dir;
  const ServerLaunch launch{
      .name = "fake-server",
      .argv =
          [](std::uint16_t) {
            return std::vector<std::string>{"sh", "-c", "echo 'bad configuration' >&2; exit 4"};
          },
      .log_file = dir.path() / "log",
      .run_as_user = std::nullopt,
      .ready = [](std::uint16_t) { return false; },
      .timeout = 10s};
  try {
    launch_on_free_port(launch);
    FAIL() << "a server that exits at startup was reported as started";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("fake-server exited with code 4 during startup"));
    EXPECT_THAT(e.what(), HasSubstr("bad configuration"));
  }
}

TEST(SupportServerLaunchTest, ServerThatNeverGetsReadyThrowsWithTheLogTail) {
  const TempDir dir;
  const ServerLaunch launch{
      .name = "fake-server",
      .argv =
          [](std::uint16_t) {
            return std::vector<std::string>{"sh", "-c", "echo 'still starting'; exec sleep 60"};
          },
      .log_file = dir.path() / "log",
      .run_as_user = std::nullopt,
      .ready = [](std::uint16_t) { return false; },
      .timeout = 1s};
  try {
    launch_on_free_port(launch);
    FAIL() << "a server that never got ready was reported as started";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("did not accept connections"));
    EXPECT_THAT(e.what(), HasSubstr("still starting"));
  }
}

TEST(SupportTailOfFileTest, ReturnsTheEndOfALongFile) {
  const TempDir dir;
  const auto file = dir.path() / "log";
  std::ofstream(file) << "0123456789";
  EXPECT_EQ(tail_of_file(file, 4), "...6789");
  EXPECT_EQ(tail_of_file(file, 100), "0123456789");
  EXPECT_THAT(tail_of_file(dir.path() / "missing"), HasSubstr("cannot read"));
}

TEST(SupportTempDirTest, CreatesAFreshDirectoryWithThePrefix) {
  const TempDir a("keel-prefix");
  const TempDir b("keel-prefix");
  EXPECT_TRUE(std::filesystem::is_directory(a.path()));
  EXPECT_NE(a.path(), b.path());
  EXPECT_THAT(a.path().filename().string(), StartsWith("keel-prefix-"));
}

TEST(SupportTempDirTest, RemovesItselfAndEverythingInIt) {
  std::filesystem::path path;
  {
    const TempDir dir;
    path = dir.path();
    std::filesystem::create_directories(path / "a" / "b");
    std::ofstream(path / "a" / "b" / "file") << "content";
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SupportTempDirTest, MoveTransfersOwnership) {
  TempDir first;
  const auto path = first.path();
  {
    TempDir second = std::move(first);
    EXPECT_TRUE(first.path().empty());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(second.path(), path);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SupportFreePortTest, ReturnsAPortThatCanBeBound) {
  const std::uint16_t port = free_loopback_port();
  ASSERT_NE(port, 0);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
      << "port " << port << ": " << std::system_category().message(errno);
  ::close(fd);
}

TEST(SupportWaitTest, ReturnsTrueAsSoonAsTheProbeSucceeds) {
  int calls = 0;
  EXPECT_TRUE(wait_until([&] { return ++calls == 3; }, 10s, 1ms));
  EXPECT_EQ(calls, 3);
}

TEST(SupportWaitTest, ReturnsFalseWhenTheTimeoutPasses) {
  int calls = 0;
  EXPECT_FALSE(wait_until([&] { return ++calls < 0; }, 20ms, 5ms));
  EXPECT_GE(calls, 2);
}

}  // namespace
}  // namespace keel::testing
