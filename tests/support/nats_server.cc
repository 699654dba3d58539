#include "tests/support/nats_server.h"

#include <fmt/format.h>
#include <nats/nats.h>

#include <utility>

#include "tests/support/server_launch.h"

namespace keel::testing {
namespace {

std::string nats_url(std::uint16_t port) { return fmt::format("nats://127.0.0.1:{}", port); }

bool accepts_clients(std::uint16_t port) {
  natsConnection* connection = nullptr;
  const natsStatus status = natsConnection_ConnectTo(&connection, nats_url(port).c_str());
  natsConnection_Destroy(connection);  // accepts nullptr
  return status == NATS_OK;
}

std::vector<std::string> command_line(const std::filesystem::path& program,
                                      const std::filesystem::path& dir, std::uint16_t port) {
  return {program.string(),
          "-js",
          "-a",
          "127.0.0.1",
          "-p",
          std::to_string(port),
          "-sd",
          (dir / "jetstream").string()};
}

}  // namespace

std::unique_ptr<NatsServer> NatsServer::start() {
  const auto program = require_program("nats-server", "nats-server", standard_program_dirs());
  TempDir dir("keel-nats");
  const ServerLaunch launch{
      .name = "nats-server",
      .argv = [&](std::uint16_t port) { return command_line(program, dir.path(), port); },
      .log_file = dir.path() / "nats.log",
      .run_as_user = std::nullopt,
      .ready = accepts_clients,
      .timeout = std::chrono::seconds(20)};
  LaunchedServer server = launch_on_free_port(launch);
  return std::unique_ptr<NatsServer>(
      new NatsServer(std::move(dir), std::move(server.process), server.port));
}

NatsServer::NatsServer(TempDir dir, ChildProcess process, std::uint16_t port)
    : dir_(std::move(dir)), process_(std::move(process)), port_(port) {}

std::string NatsServer::url() const { return nats_url(port_); }

}  // namespace keel::testing
