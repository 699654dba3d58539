// What the shortener accepts as a target, and the one form it stores.
//
// Accepted: an absolute http or https URL with a host, at most 2,048 bytes, without
// credentials (user:password@ hides the real host from people reading the link), not pointing
// at the shortener itself (a loop, and a way to hide a target behind two hops). Everything else
// — javascript:, data:, file:, relative references, spaces and control bytes — is refused with
// InvalidUrl saying why.
//
// Normalised so that one page has one form, which dedup compares (by its MD5): scheme and host
// lower-cased, the default port (80, 443) dropped, an empty path written "/". Path, query and
// fragment are kept as they are: they are case-sensitive, and "equivalent" rewrites of them are
// not safe in general.
//
// Aliases (custom codes) are [A-Za-z0-9_-]{3,64} and must not collide with the service's own
// paths (api, metrics, healthz, static, robots.txt, favicon.ico).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::shortener {

class InvalidUrl : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct UrlPolicy {
  std::size_t max_length = 2048;
  // Hosts that are the shortener itself (from --base-url), compared case-insensitively.
  std::vector<std::string> own_hosts = {};
};

// The normalised URL, or InvalidUrl with the reason.
std::string normalize_url(std::string_view url, const UrlPolicy& policy = {});

class InvalidAlias : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
// Throws InvalidAlias with the reason.
void validate_alias(std::string_view alias);
bool is_reserved_path(std::string_view segment) noexcept;

}  // namespace keel::shortener
