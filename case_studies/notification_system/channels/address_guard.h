// The notifier's SSRF guard: outbound HTTP (webhooks, SMS and push gateways) may only reach
// public addresses, so that a user who registers http://169.254.169.254/ or http://10.0.0.5/admin
// as a webhook URL cannot make the service call into its own network.
//
//   AddressGuard guard({"127.0.0.1"});            // addresses or host names allowed anyway
//   GuardedTarget t = guard.resolve("hooks.example.com", 443);
//   if (!t.error.empty()) ...                     // t.refused: a non-public address (permanent)
//   ... connect to t.addresses only (pin them: CURLOPT_RESOLVE), never resolve again ...
//
// The host is resolved once; every address it resolves to must be public (one private address
// among public ones refuses the host: a rebinding resolver could hand out either), unless the
// host name itself, or the address, is in the allowed list. The caller then connects to the
// checked addresses only, so a second DNS answer cannot switch the target (DNS rebinding).
//
// Non-public (see non_public_reason): 0.0.0.0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16,
// 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24,
// 203.0.113/24, 224/4 (multicast), 240/4 (reserved, broadcast); IPv6 ::, ::1, fc00::/7 (ULA),
// fe80::/10, fec0::/10, ff00::/8, 100::/64, 2001::/23, 2001:db8::/32, 3fff::/20, 64:ff9b:1::/48,
// everything outside 2000::/3, and the IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
// NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) forms judged by the IPv4 address inside.
//
// Thread safety: immutable after construction; resolve() may run on any number of threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::notifier {

// Why `address` (numeric IPv4 or IPv6 text, without brackets) must not be reached from outbound
// requests ("loopback", "private network (RFC 1918)", ...), or nullopt when it is public.
// Throws std::invalid_argument when `address` is not a numeric IP address.
std::optional<std::string> non_public_reason(std::string_view address);

// `address` in its canonical numeric form ("::ffff:127.0.0.1" stays IPv6, "0:0::1" → "::1"),
// or nullopt when it is not a numeric IP address. Brackets are not accepted.
std::optional<std::string> canonical_ip(std::string_view address);

struct GuardedTarget {
  std::string host;  // as asked (brackets of an IPv6 literal removed)
  std::uint16_t port = 0;
  std::vector<std::string> addresses =
      {};                  // canonical numeric addresses, all checked; empty on error
  std::string error = {};  // empty when the target may be reached
  bool refused = false;    // error is a refusal (permanent), not a lookup failure
};

class AddressGuard {
 public:
  // `allowed_private_hosts`: host names (case-insensitive) and numeric addresses that may be
  // reached even though they are not public, e.g. "127.0.0.1" in tests, "sms-gw.internal".
  explicit AddressGuard(const std::vector<std::string>& allowed_private_hosts = {});

  // Resolves `host` (a name or a numeric address, IPv6 with or without brackets) and checks
  // every address. A lookup failure is an error with refused == false (worth retrying).
  GuardedTarget resolve(std::string_view host, std::uint16_t port) const;

  // True when `address` (canonical numeric) may be connected to for `host`.
  bool allows(std::string_view host, std::string_view address) const;

 private:
  bool host_allowed(std::string_view host) const;
  std::vector<std::string> allowed_;  // lower-case names and canonical addresses
};

}  // namespace keel::notifier
