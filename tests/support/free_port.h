// free_loopback_port(): a TCP port on 127.0.0.1 that was free a moment ago, for a test server.
//
// The port is released before returning, so another process may take it before the server binds
// it; the server fixtures detect "address already in use" and retry with a new port.
// Thread safety: safe to call from any thread.
#pragma once

#include <cstdint>

namespace keel::testing {

// Binds 127.0.0.1:0, reads the port the kernel chose and closes the socket.
// Throws std::system_error when no socket can be bound.
std::uint16_t free_loopback_port();

}  // namespace keel::testing
