// "HOST:PORT" as the services' flags take it (--listen, --redis): "127.0.0.1:8080",
// "localhost:6379", "[::1]:6379" (an IPv6 host in brackets, returned without them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel::http {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// nullopt unless the host is not empty (an IPv6 address in brackets, no other ':'), and the port
// is all decimal digits in [0, 65535]: "80abc", "+80", "65536", "::1:80" and ":80" are refused.
// Port 0 is allowed (listen on any free port); a caller that needs a real port checks for it.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace keel::http
