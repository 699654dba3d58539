#include "tests/support/redis_server.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "tests/support/server_launch.h"

namespace keel::testing {
namespace {

bool answers_ping(std::uint16_t port) {
  const timeval timeout{1, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (context == nullptr) return false;
  bool pong = false;
  if (context->err == 0) {
    auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
    pong = reply != nullptr && reply->type == REDIS_REPLY_STATUS &&
           std::string_view(reply->str, reply->len) == "PONG";
    if (reply != nullptr) freeReplyObject(reply);
  }
  redisFree(context);
  return pong;
}

std::vector<std::string> command_line(const std::filesystem::path& program,
                                      const std::filesystem::path& dir, std::uint16_t port) {
  std::vector<std::string> args{program.string()};
  const std::pair<const char*, std::string> options[] = {
      {"--bind", "127.0.0.1"},    {"--port", std::to_string(port)}, {"--save", ""},
      {"--appendonly", "no"},     {"--dir", dir.string()},          {"--daemonize", "no"},
      {"--protected-mode", "yes"}};
  for (const auto& [name, value] : options) args.insert(args.end(), {name, value});
  return args;
}

}  // namespace

std::unique_ptr<RedisServer> RedisServer::start() {
  const auto program = require_program("redis-server", "redis-server", standard_program_dirs());
  TempDir dir("keel-redis");
  const std::filesystem::path path = dir.path();
  ServerLaunch launch{
      .name = "redis-server",
      .argv = [program, path](std::uint16_t port) { return command_line(program, path, port); },
      .log_file = path / "redis.log",
      .run_as_user = std::nullopt,
      .ready = answers_ping,
      .timeout = std::chrono::seconds(20)};
  LaunchedServer server = launch_on_free_port(launch);
  return std::unique_ptr<RedisServer>(
      new RedisServer(std::move(dir), std::move(launch), std::move(server.process), server.port));
}

RedisServer::RedisServer(TempDir dir, ServerLaunch launch, ChildProcess process, std::uint16_t port)
    : dir_(std::move(dir)), launch_(std::move(launch)), process_(std::move(process)), port_(port) {}

void RedisServer::stop(bool crash) {
  if (crash) {
    process_.kill_group();
  } else {
    process_.stop(SIGTERM);
  }
}

void RedisServer::start_again() {
  if (!process_.running()) process_ = launch_on_port(launch_, port_);
}

RedisServer& shared_redis_server() {
  static const auto started = []() -> std::pair<std::unique_ptr<RedisServer>, std::string> {
    try {
      return {RedisServer::start(), ""};
    } catch (const std::exception& e) {
      return {nullptr, e.what()};
    }
  }();
  if (started.first == nullptr) {
    throw std::runtime_error("could not start redis-server: " + started.second);
  }
  return *started.first;
}

}  // namespace keel::testing
