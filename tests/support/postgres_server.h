// PostgresServer: a private PostgreSQL cluster for one test suite, initialised in a temporary
// directory and listening on a free 127.0.0.1 port with trust authentication for the superuser
// `postgres`. Durability against power loss is switched off (fsync, full_page_writes) because
// the cluster is thrown away; a crash of the server itself loses nothing committed. start() returns
// once a libpqxx connection succeeds; the destructor shuts the server down (SIGINT, PostgreSQL's
// "fast" shutdown). stop() and start_again() take it down and back on the same port and data
// directory for fault tests.
//
// When the tests run as root the cluster runs as the `postgres` system user, since PostgreSQL
// refuses to run as root.
//
// Thread safety: the accessors and create_database() are safe to call from any thread. Not
// copyable or movable; tests share one through a std::unique_ptr.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/server_launch.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {

class PostgresServer {
 public:
  // Throws std::runtime_error when PostgreSQL is not installed (naming the Debian package
  // `postgresql`), when initdb fails (with its output), or when the server does not accept
  // connections within 30 s (with the tail of its log).
  static std::unique_ptr<PostgresServer> start();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::string host() const { return "127.0.0.1"; }
  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return process_.pid(); }

  // Stops the server and keeps its port and data directory: as a crash does (`crash`: SIGKILL
  // to the server and every process it started, nothing flushed) or as an operator does
  // (SIGINT, a fast shutdown). Clients see their connections drop. No-op when already stopped.
  void stop(bool crash = false);
  // Starts the stopped server again on the same port and data directory and returns once a
  // client can use it. Throws std::runtime_error (with the log's tail) when it does not come up.
  void start_again();
  // stop(crash), then start_again().
  void restart(bool crash = false) {
    stop(crash);
    start_again();
  }
  std::filesystem::path log_file() const { return dir_.path() / "postgres.log"; }

  // libpq connection string for the `postgres` database as superuser `postgres`.
  std::string connection_string() const { return connection_string_for("postgres"); }
  std::string connection_string_for(const std::string& database) const;

  // Creates an empty database (so each test can have its own) and returns its connection
  // string. Throws pqxx exceptions when the database exists or the name is invalid.
  std::string create_database(const std::string& name) const;

 private:
  PostgresServer(TempDir dir, ServerLaunch launch, ChildProcess process, std::uint16_t port);

  TempDir dir_;          // declared first so that the server stops before its directory goes
  ServerLaunch launch_;  // how to start it again
  ChildProcess process_;
  std::uint16_t port_;
};

}  // namespace keel::testing
