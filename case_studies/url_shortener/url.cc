#include "case_studies/url_shortener/url.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cctype>

#include "keel/core/encoding.h"

namespace keel::shortener {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

constexpr std::array<std::string_view, 6> kReserved = {"api",    "metrics",    "healthz",
                                                       "static", "robots.txt", "favicon.ico"};

}  // namespace

std::string normalize_url(std::string_view input, const UrlPolicy& policy) {
  const auto refuse = [&](std::string_view why) {
    return InvalidUrl(fmt::format("{} {}", quote_for_message(input), why));
  };
  if (input.empty()) throw InvalidUrl("the URL is empty");
  if (input.size() > policy.max_length) {
    throw refuse(fmt::format("is longer than {} bytes", policy.max_length));
  }
  // A URI with a scheme (relative references fail here), fragment allowed.
  const auto parsed = boost::urls::parse_uri(input);
  if (!parsed) throw refuse("is not an absolute URL");
  const boost::urls::url_view& url = *parsed;
  const std::string scheme = lower(url.scheme());
  if (scheme != "http" && scheme != "https") throw refuse("is not an http or https URL");
  if (!url.has_authority() || url.encoded_host().empty()) throw refuse("has no host");
  if (url.has_userinfo()) throw refuse("carries credentials (user@ or user:password@)");
  // After an authority the path is empty or starts with '/' (RFC 3986, path-abempty). Boost.URL
  // 1.81 also takes "http://a:80b.example/" as host "a", port 80 and path "b.example/", which
  // would be rebuilt as "http://ab.example/": another host than the one checked above.
  if (!url.encoded_path().empty() && url.encoded_path().front() != '/') {
    throw refuse("is not a valid URL (after the host and port, the path must start with '/')");
  }
  const std::string host = lower(url.encoded_host());
  for (const std::string& own : policy.own_hosts) {
    if (lower(own) == host) throw refuse("points at this shortener");
  }
  std::string port;
  if (url.has_port()) {
    const std::string_view digits = url.port();
    unsigned long value = 0;
    const bool numeric = !digits.empty() && digits.size() <= 5 &&
                         std::all_of(digits.begin(), digits.end(),
                                     [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) value = std::stoul(std::string(digits));
    if (!numeric || value == 0 || value > 65535) throw refuse("has an invalid port");
    const bool is_default = (scheme == "http" && value == 80) || (scheme == "https" && value == 443);
    if (!is_default) port = fmt::format(":{}", value);
  }
  // Rebuilt from its parts: scheme and host lower-cased, the default port dropped, "/" for an
  // empty path; path, query and fragment exactly as sent (already valid percent-encoding).
  std::string out = fmt::format("{}://{}{}", scheme, host, port);
  out += url.encoded_path().empty() ? std::string_view("/") : std::string_view(url.encoded_path());
  if (url.has_query()) out += fmt::format("?{}", std::string_view(url.encoded_query()));
  if (url.has_fragment()) out += fmt::format("#{}", std::string_view(url.encoded_fragment()));
  // The "/" added for an empty path can take a URL at the limit past it: the stored form must
  // itself be acceptable (normalising is idempotent).
  if (out.size() > policy.max_length) {
    throw refuse(fmt::format("is longer than {} bytes once normalised", policy.max_length));
  }
  return out;
}

bool is_reserved_path(std::string_view segment) noexcept {
  return std::find(kReserved.begin(), kReserved.end(), segment) != kReserved.end();
}

void validate_alias(std::string_view alias) {
  if (alias.size() < 3 || alias.size() > 64) {
    throw InvalidAlias(
        fmt::format("the alias {} must be 3 to 64 characters", quote_for_message(alias)));
  }
  for (const char c : alias) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    c == '_' || c == '-';
    if (!ok) {
      throw InvalidAlias(fmt::format("the alias {} may only hold A-Z, a-z, 0-9, '_' and '-'",
                                     quote_for_message(alias)));
    }
  }
  if (is_reserved_path(lower(alias))) {
    throw InvalidAlias(fmt::format("the alias {} is a path of the service itself",
                                   quote_for_message(alias)));
  }
}

}  // namespace keel::shortener
