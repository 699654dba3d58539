// keel::nats::ConnectionOptions: where a NatsTransport connects and how it survives outages.
//
// nats.c keeps one TCP connection per NatsTransport and reconnects on its own: while it is
// down, core publishes wait in a reconnect buffer (and fail once it is full), JetStream
// publishes fail after request_timeout, and subscriptions are re-established on reconnect.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "keel/core/clock.h"

namespace keel::nats {

struct ConnectionOptions {
  // The server, or several comma-separated ("nats://a:4222,nats://b:4222"): nats.c tries them in
  // turn. Default: nats://127.0.0.1:4222. REQUIRES: not empty.
  std::string url = "nats://127.0.0.1:4222";
  // Shown by the server (connz) for this client. Default: "keel".
  std::string name = "keel";
  // Longest wait to open the connection. Default: 2 s. REQUIRES: > 0.
  Duration connect_timeout = std::chrono::seconds(2);
  // Longest wait for a JetStream API call or publish acknowledgement, and for flushing on close.
  // Default: 5 s. REQUIRES: > 0.
  Duration request_timeout = std::chrono::seconds(5);
  // Reconnect after losing the server. Default: on.
  bool reconnect = true;
  // Reconnect attempts per server before giving up and closing; -1 retries forever.
  // Default: -1. REQUIRES: >= -1.
  int max_reconnect_attempts = -1;
  // Wait between two attempts on the same server. Default: 2 s. REQUIRES: >= 0.
  Duration reconnect_wait = std::chrono::seconds(2);
  // Core publishes buffered while reconnecting, in bytes. Default: 8 MiB. REQUIRES: > 0.
  std::size_t reconnect_buffer_bytes = 8 << 20;
};

}  // namespace keel::nats
