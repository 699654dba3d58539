// keel::redis::ConnectionOptions: where a keel Redis adapter connects and how long it waits.
//
// Every adapter in keel/redis keeps a small pool of blocking connections to one Redis server
// (or to a cluster-aware proxy): a thread takes a connection for one command and gives it back,
// so N threads have up to pool_size commands in flight. Connections open lazily, on first use;
// one that fails is closed and replaced by a fresh one on a later call.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "keel/core/clock.h"

namespace keel::redis {

struct ConnectionOptions {
  // The server's address. Default: 127.0.0.1:6379. REQUIRES: host not empty, port > 0.
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  // Sent with AUTH after connecting when not empty; `username` selects an ACL user (Redis 6+).
  std::string username{};
  std::string password{};
  // Database selected after connecting. Default: 0. REQUIRES: >= 0.
  int database = 0;
  // Longest wait to open a connection, and for one command's reply. Default: 1 s each.
  // REQUIRES: > 0.
  Duration connect_timeout = std::chrono::seconds(1);
  Duration command_timeout = std::chrono::seconds(1);
  // Connections held at most: the commands that can be in flight at once. Callers beyond that
  // wait for a connection. Default: 4. REQUIRES: > 0.
  std::size_t pool_size = 4;
};

}  // namespace keel::redis
