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
  const std::filesystem::path path = dir.path();
  ServerLaunch launch{
      .name = "nats-server",
      .argv = [program, path](std::uint16_t port) { return command_line(program, path, port); },
      .log_file = path / "nats.log",
      .run_as_user = std::nullopt,
      .ready = accepts_clients,
      .timeout = std::chrono::seconds(20)};
  LaunchedServer server = launch_on_free_port(launch);
  return std::unique_ptr<NatsServer>(
      new NatsServer(std::move(dir), std::move(launch), std::move(server.process), server.port));
}

NatsServer::NatsServer(TempDir dir, ServerLaunch launch, ChildProcess process, std::uint16_t port)
    : dir_(std::move(dir)), launch_(std::move(launch)), process_(std::move(process)), port_(port) {}

void NatsServer::stop(bool crash) {
  if (crash) {
    process_.kill_group();
  } else {
    process_.stop(SIGTERM);
  }
}

void NatsServer::start_again() {
  if (!process_.running()) process_ = launch_on_port(launch_, port_);
}

std::string NatsServer::url() const { return nats_url(port_); }

}  // namespace keel::testing
