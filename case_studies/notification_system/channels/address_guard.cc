#include "case_studies/notification_system/channels/address_guard.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "keel/core/encoding.h"

namespace keel::notifier {
namespace {

using V4 = std::array<std::uint8_t, 4>;
using V6 = std::array<std::uint8_t, 16>;

struct IpAddress {
  bool v6 = false;
  V4 v4_bytes = {};
  V6 v6_bytes = {};
};

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  const std::string z(text);  // inet_pton needs a terminated string
  IpAddress ip;
  if (inet_pton(AF_INET, z.c_str(), ip.v4_bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, z.c_str(), ip.v6_bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return std::nullopt;
}

std::string format_ip(const IpAddress& ip) {
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (ip.v6) {
    inet_ntop(AF_INET6, ip.v6_bytes.data(), out.data(), static_cast<socklen_t>(out.size()));
  } else {
    inet_ntop(AF_INET, ip.v4_bytes.data(), out.data(), static_cast<socklen_t>(out.size()));
  }
  return std::string(out.data());
}

// A CIDR block over the first `prefix_bits` bits of `network`.
template <std::size_t N>
bool in_block(const std::array<std::uint8_t, N>& address,
              const std::array<std::uint8_t, N>& network, unsigned prefix_bits) {
  for (std::size_t i = 0; i < N && prefix_bits > 0; ++i) {
    const unsigned bits = std::min(prefix_bits, 8U);
    const auto mask = static_cast<std::uint8_t>(0xFFU << (8U - bits));
    if ((address[i] & mask) != (network[i] & mask)) return false;
    prefix_bits -= bits;
  }
  return true;
}

struct V4Block {
  V4 network;
  unsigned prefix;
  const char* reason;
};

// IANA's IPv4 special-purpose registry, less what is globally reachable.
constexpr std::array<V4Block, 16> kV4Blocks = {{
    {{0, 0, 0, 0}, 8, "\"this network\" (0.0.0.0/8)"},
    {{10, 0, 0, 0}, 8, "private network (RFC 1918)"},
    {{100, 64, 0, 0}, 10, "shared address space (CGNAT, 100.64.0.0/10)"},
    {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link-local (169.254.0.0/16, cloud metadata)"},
    {{172, 16, 0, 0}, 12, "private network (RFC 1918)"},
    {{192, 0, 0, 0}, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {{192, 0, 2, 0}, 24, "documentation (TEST-NET-1)"},
    {{192, 88, 99, 0}, 24, "6to4 relay anycast (192.88.99.0/24)"},
    {{192, 168, 0, 0}, 16, "private network (RFC 1918)"},
    {{198, 18, 0, 0}, 15, "benchmarking (198.18.0.0/15)"},
    {{198, 51, 100, 0}, 24, "documentation (TEST-NET-2)"},
    {{203, 0, 113, 0}, 24, "documentation (TEST-NET-3)"},
    {{224, 0, 0, 0}, 4, "multicast"},
    {{255, 255, 255, 255}, 32, "broadcast"},
    {{240, 0, 0, 0}, 4, "reserved (240.0.0.0/4)"},
}};

std::optional<std::string> v4_reason(const V4& address) {
  for (const V4Block& block : kV4Blocks) {
    if (in_block(address, block.network, block.prefix)) return std::string(block.reason);
  }
  return std::nullopt;
}

V6 v6(std::initializer_list<std::uint8_t> leading) {
  V6 out{};
  std::copy(leading.begin(), leading.end(), out.begin());
  return out;
}

V4 v4_at(const V6& address, std::size_t offset) {
  return {address[offset], address[offset + 1], address[offset + 2], address[offset + 3]};
}

// An IPv6 address that carries an IPv4 address is judged by it: reaching ::ffff:127.0.0.1 is
// reaching 127.0.0.1.
std::optional<std::string> embedded_v4_reason(const V6& address, std::string_view form,
                                              std::size_t offset) {
  if (auto reason = v4_reason(v4_at(address, offset))) {
    return fmt::format("{} in {} form", *reason, form);
  }
  return std::nullopt;
}

std::optional<std::string> v6_reason(const V6& a) {
  static const V6 kZero{};
  V6 loopback{};
  loopback[15] = 1;
  if (a == kZero) return "unspecified address (::)";
  if (a == loopback) return "loopback (::1)";
  if (in_block(a, v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}), 96)) {
    return embedded_v4_reason(a, "IPv4-mapped IPv6", 12);
  }
  if (in_block(a, kZero, 96)) {
    // ::a.b.c.d, deprecated; kernels may still route it to the IPv4 address.
    if (auto reason = embedded_v4_reason(a, "IPv4-compatible IPv6", 12)) return reason;
    return "deprecated IPv4-compatible IPv6 address (::/96)";
  }
  if (in_block(a, v6({0x00, 0x64, 0xFF, 0x9B}), 96)) {
    return embedded_v4_reason(a, "NAT64 (64:ff9b::/96)", 12);
  }
  if (in_block(a, v6({0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01}), 48)) {
    return "local-use NAT64 (64:ff9b:1::/48)";
  }
  if (in_block(a, v6({0x01, 0x00}), 64)) return "discard-only (100::/64)";
  if (in_block(a, v6({0xFC}), 7)) return "unique local address (fc00::/7)";
  if (in_block(a, v6({0xFE, 0x80}), 10)) return "link-local (fe80::/10)";
  if (in_block(a, v6({0xFE, 0xC0}), 10)) return "site-local (fec0::/10, deprecated)";
  if (in_block(a, v6({0xFF}), 8)) return "multicast (ff00::/8)";
  if (!in_block(a, v6({0x20}), 3)) return "not global unicast (outside 2000::/3)";
  if (in_block(a, v6({0x20, 0x01, 0x0D, 0xB8}), 32)) return "documentation (2001:db8::/32)";
  if (in_block(a, v6({0x20, 0x01}), 23)) {
    return "IETF protocol assignments (2001::/23: Teredo, ORCHID, ...)";
  }
  if (in_block(a, v6({0x20, 0x02}), 16)) return embedded_v4_reason(a, "6to4 (2002::/16)", 2);
  if (in_block(a, v6({0x3F, 0xFF}), 20)) return "documentation (3fff::/20)";
  return std::nullopt;
}

std::optional<std::string> reason_for(const IpAddress& ip) {
  return ip.v6 ? v6_reason(ip.v6_bytes) : v4_reason(ip.v4_bytes);
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* list) const noexcept { freeaddrinfo(list); }
};

}  // namespace

std::optional<std::string> non_public_reason(std::string_view address) {
  const auto ip = parse_ip(address);
  if (!ip) {
    throw std::invalid_argument(
        fmt::format("not a numeric IP address: {}", quote_for_message(address)));
  }
  return reason_for(*ip);
}

std::optional<std::string> canonical_ip(std::string_view address) {
  const auto ip = parse_ip(address);
  if (!ip) return std::nullopt;
  return format_ip(*ip);
}

AddressGuard::AddressGuard(const std::vector<std::string>& allowed_private_hosts) {
  for (const std::string& entry : allowed_private_hosts) {
    const std::string_view bare = strip_brackets(entry);
    allowed_.push_back(canonical_ip(bare).value_or(lower(bare)));
  }
}

bool AddressGuard::host_allowed(std::string_view host) const {
  const std::string key = canonical_ip(host).value_or(lower(host));
  return std::find(allowed_.begin(), allowed_.end(), key) != allowed_.end();
}

bool AddressGuard::allows(std::string_view host, std::string_view address) const {
  const auto ip = parse_ip(address);
  if (!ip) return false;
  return !reason_for(*ip) || host_allowed(strip_brackets(host)) || host_allowed(format_ip(*ip));
}

GuardedTarget AddressGuard::resolve(std::string_view host_in, std::uint16_t port) const {
  GuardedTarget target{.host = std::string(strip_brackets(host_in)), .port = port};
  if (target.host.empty()) {
    target.error = "the URL has no host";
    target.refused = true;
    return target;
  }
  std::vector<std::string> found;
  if (auto literal = canonical_ip(target.host)) {
    found.push_back(*literal);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* raw = nullptr;
    const int rc = getaddrinfo(target.host.c_str(), nullptr, &hints, &raw);
    const std::unique_ptr<addrinfo, AddrInfoDeleter> list(raw);
    if (rc != 0) {
      target.error = fmt::format("cannot resolve host {}: {}", quote_for_message(target.host),
                                 gai_strerror(rc));
      return target;
    }
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
      std::array<char, NI_MAXHOST> text{};
      if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text.data(), static_cast<socklen_t>(text.size()),
                      nullptr, 0, NI_NUMERICHOST) != 0) {
        continue;
      }
      // Scoped IPv6 answers ("fe80::1%eth0") lose their scope here; they are link-local anyway.
      std::string_view numeric(text.data());
      numeric = numeric.substr(0, numeric.find('%'));
      if (auto canonical = canonical_ip(numeric)) {
        if (std::find(found.begin(), found.end(), *canonical) == found.end()) {
          found.push_back(*canonical);
        }
      }
    }
    if (found.empty()) {
      target.error =
          fmt::format("host {} resolved to no usable address", quote_for_message(target.host));
      return target;
    }
  }
  for (const std::string& address : found) {
    if (allows(target.host, address)) continue;
    target.error = fmt::format(
        "refused: host {} resolves to {}, a non-public address ({}); allow it in "
        "allowed_private_hosts if this is intended",
        quote_for_message(target.host), address, *non_public_reason(address));
    target.refused = true;
    return target;
  }
  target.addresses = std::move(found);
  return target;
}

}  // namespace keel::notifier
