#include "tests/support/postgres_server.h"

#include <fmt/format.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "tests/support/server_launch.h"

namespace keel::testing {
namespace {

constexpr std::string_view kMissing =
    "PostgreSQL (initdb, postgres) not found: install the Debian package 'postgresql' "
    "(scripts/bootstrap installs it)";

bool has_server_programs(const std::filesystem::path& bin) {
  std::error_code ec;
  return std::filesystem::is_regular_file(bin / "initdb", ec) &&
         std::filesystem::is_regular_file(bin / "postgres", ec);
}

// The major version in /usr/lib/postgresql/<version>/bin, where Debian puts the server programs
// (which are not on PATH); -1 when the name is not a number.
int major_version(const std::filesystem::path& version_dir) {
  const std::string name = version_dir.filename().string();
  int major = -1;
  std::from_chars(name.data(), name.data() + name.size(), major);
  return major;
}

std::filesystem::path find_bin_dir() {
  std::optional<std::filesystem::path> newest;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto bin = entry.path() / "bin";
    if (has_server_programs(bin) &&
        (!newest || major_version(entry.path()) > major_version(newest->parent_path()))) {
      newest = bin;
    }
  }
  if (newest) return *newest;

  if (const CommandResult pg_config = run_command({"pg_config", "--bindir"});
      pg_config.exit_code == 0) {
    std::string bindir = pg_config.out;
    bindir.erase(bindir.find_last_not_of(" \n\r\t") + 1);
    if (has_server_programs(bindir)) return bindir;
  }
  if (const auto initdb = find_program("initdb");
      initdb && has_server_programs(initdb->parent_path())) {
    return initdb->parent_path();
  }
  throw std::runtime_error(std::string(kMissing));
}

// PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user that
// the Debian package creates.
std::optional<std::string> server_user() {
  if (::geteuid() != 0) return std::nullopt;
  if (!find_user("postgres")) {
    throw std::runtime_error(
        "PostgreSQL cannot run as root and there is no 'postgres' user to run it as: install the "
        "Debian package 'postgresql' (scripts/bootstrap installs it)");
  }
  return "postgres";
}

void give_to(const std::filesystem::path& path, const std::string& user) {
  const auto ids = find_user(user);
  if (!ids || ::chown(path.c_str(), ids->uid, ids->gid) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            fmt::format("chown {} to {}", path.string(), user));
  }
}

std::string conninfo(std::uint16_t port, const std::string& database) {
  // libpq conninfo values are single-quoted with backslash escapes.
  std::string quoted;
  for (const char c : database) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return fmt::format("host=127.0.0.1 port={} user=postgres dbname='{}'", port, quoted);
}

// The processes whose parent is `parent`, from /proc.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc()) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) children.push_back(pid);
  }
  return children;
}

bool accepts_connections(std::uint16_t port) {
  try {
    pqxx::connection connection(conninfo(port, "postgres"));
    return connection.is_open();
  } catch (const std::exception&) {
    return false;
  }
}

// This is what `pg_ctl start` runs, minus daemonising: started directly, the postmaster is our
// child, so we own its PID, see it exit, and the kernel stops it if the test process dies.
std::vector<std::string> command_line(const std::filesystem::path& bin,
                                      const std::filesystem::path& dir, std::uint16_t port) {
  std::vector<std::string> args{(bin / "postgres").string(), "-D", (dir / "data").string(),   "-p",
                                std::to_string(port),        "-k", (dir / "sockets").string()};
  // The cluster is thrown away after the test: surviving a power loss only costs time (fsync,
  // full_page_writes). synchronous_commit stays on: it writes the WAL to the kernel at each
  // commit (no fsync here), so a crash of the server (stop(true)) loses nothing committed; with
  // it off, the last ~200 ms of commits are lost, which fault tests would mistake for keel's.
  for (const char* setting : {"listen_addresses=127.0.0.1", "fsync=off", "full_page_writes=off"}) {
    args.insert(args.end(), {"-c", setting});
  }
  return args;
}

}  // namespace

std::unique_ptr<PostgresServer> PostgresServer::start() {
  const std::filesystem::path bin = find_bin_dir();
  const std::optional<std::string> user = server_user();

  TempDir dir("keel-postgres");
  const auto data = dir.path() / "data";
  const auto sockets = dir.path() / "sockets";
  std::filesystem::create_directory(sockets);
  if (user) {
    give_to(dir.path(), *user);
    give_to(sockets, *user);
  }

  const CommandResult initdb =
      run_command({(bin / "initdb").string(), "-D", data.string(), "-U", "postgres", "-A", "trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"},
                  {}, user);
  if (initdb.exit_code != 0) {
    throw std::runtime_error(fmt::format("initdb failed (exit code {}):\n{}{}", initdb.exit_code,
                                         initdb.out, initdb.err));
  }

  const std::filesystem::path path = dir.path();
  ServerLaunch launch{
      .name = "postgres",
      .argv = [bin, path](std::uint16_t port) { return command_line(bin, path, port); },
      .log_file = path / "postgres.log",
      .run_as_user = user,
      .ready = accepts_connections,
      .timeout = std::chrono::seconds(30)};
  LaunchedServer server = launch_on_free_port(launch);
  return std::unique_ptr<PostgresServer>(new PostgresServer(
      std::move(dir), std::move(launch), std::move(server.process), server.port));
}

PostgresServer::PostgresServer(TempDir dir, ServerLaunch launch, ChildProcess process,
                               std::uint16_t port)
    : dir_(std::move(dir)), launch_(std::move(launch)), process_(std::move(process)), port_(port) {}

void PostgresServer::stop(bool crash) {
  if (crash) {
    // The postmaster and all its children at once, as the OOM killer or a power cut would: the
    // children run in their own process groups (PostgreSQL calls setsid() in each), so they are
    // found by parent. The postmaster is frozen first so it forks no new one meanwhile. The
    // next start runs crash recovery from the WAL.
    const pid_t postmaster = process_.pid();
    if (process_.running() && ::kill(postmaster, SIGSTOP) == 0) {
      for (const pid_t child : children_of(postmaster)) ::kill(child, SIGKILL);
    }
    process_.kill_group();
  } else {
    process_.stop(SIGINT);
  }
}

void PostgresServer::start_again() {
  if (!process_.running()) process_ = launch_on_port(launch_, port_);
}

PostgresServer::~PostgresServer() {
  // Fast shutdown: aborts open transactions and disconnects clients instead of waiting for them.
  process_.stop(SIGINT);
}

std::string PostgresServer::connection_string_for(const std::string& database) const {
  return conninfo(port_, database);
}

std::string PostgresServer::create_database(const std::string& name) const {
  pqxx::connection connection(connection_string());
  // CREATE DATABASE cannot run inside a transaction block.
  pqxx::nontransaction tx(connection);
  tx.exec0("CREATE DATABASE " + tx.quote_name(name));
  return connection_string_for(name);
}

}  // namespace keel::testing
