// URL validation and normalisation, and aliases, of the URL shortener
// (case_studies/url_shortener/url.h).
//
// Input: 1 byte choosing the length limit (the default 2,048, or a small one so that the limit
// is reached often), then lines: the URL, an own host, an alias.
// Checked, for every URL normalize_url() accepts: the result is an absolute http or https URL
// (it parses again) naming the input's host, lower-cased and non-empty, with no credentials, no
// default port, not one of the own hosts, no longer than the limit, and normalising it again
// gives it back unchanged (idempotence) — while a URL whose scheme is not http(s) is always
// refused, and only with InvalidUrl. validate_alias() agrees with a reference written from the
// rules in url.h.
#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "case_studies/url_shortener/url.h"
#include "fuzz/check.h"

namespace {

using keel::shortener::InvalidAlias;
using keel::shortener::InvalidUrl;
using keel::shortener::UrlPolicy;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool has_upper(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

void check_normalized(std::string_view input, const std::string& out, const UrlPolicy& policy) {
  KEEL_FUZZ_CHECK(out.size() <= policy.max_length,
                  "normalize_url('{}') = '{}' is {} bytes, over the limit of {}", input, out,
                  out.size(), policy.max_length);
  const std::string scheme = lower(input.substr(0, input.find(':')));
  KEEL_FUZZ_CHECK(scheme == "http" || scheme == "https", "scheme '{}' accepted in '{}'", scheme,
                  input);
  KEEL_FUZZ_CHECK(out.starts_with(scheme + "://"), "'{}' became '{}'", input, out);
  const auto parsed = boost::urls::parse_uri(out);
  KEEL_FUZZ_CHECK(parsed.has_value(), "'{}' normalised to '{}', which does not parse", input, out);
  const boost::urls::url_view& url = *parsed;
  KEEL_FUZZ_CHECK(url.scheme() == scheme && url.has_authority() && !url.encoded_host().empty(),
                  "'{}' has no host", out);
  KEEL_FUZZ_CHECK(!url.has_userinfo(), "'{}' carries credentials", out);
  KEEL_FUZZ_CHECK(!has_upper(url.encoded_host()), "host of '{}' not lower-cased", out);
  const auto original = boost::urls::parse_uri(input);
  KEEL_FUZZ_CHECK(original.has_value() &&
                      lower(original->encoded_host()) == std::string_view(url.encoded_host()),
                  "'{}' became '{}': another host", input, out);
  KEEL_FUZZ_CHECK(!url.encoded_path().empty(), "empty path in '{}'", out);
  if (url.has_port()) {
    const std::string_view port = url.port();
    KEEL_FUZZ_CHECK(!port.empty() && port.front() != '0', "port of '{}' not canonical", out);
    KEEL_FUZZ_CHECK(!(scheme == "http" && port == "80") && !(scheme == "https" && port == "443"),
                    "default port kept in '{}'", out);
  }
  for (const std::string& own : policy.own_hosts) {
    KEEL_FUZZ_CHECK(lower(own) != lower(url.encoded_host()), "'{}' points at own host '{}'", out,
                    own);
  }
  std::string again;
  try {
    again = keel::shortener::normalize_url(out, policy);
  } catch (const InvalidUrl& e) {
    KEEL_FUZZ_CHECK(false, "'{}' (from '{}') is refused when normalised again: {}", out, input,
                    e.what());
  }
  KEEL_FUZZ_CHECK(again == out, "not idempotent: '{}' -> '{}' -> '{}'", input, out, again);
}

void check_url(std::string_view input, const UrlPolicy& policy) {
  std::string out;
  try {
    out = keel::shortener::normalize_url(input, policy);
  } catch (const InvalidUrl& e) {
    KEEL_FUZZ_CHECK(std::string_view(e.what()).size() < 1024, "a {}-byte message",
                    std::string_view(e.what()).size());
    return;
  }
  check_normalized(input, out, policy);
}

// url.h: [A-Za-z0-9_-]{3,64}, not one of the service's own paths (compared lower-cased).
bool reference_alias_ok(std::string_view alias) {
  static constexpr std::array<std::string_view, 6> kOwnPaths = {
      "api", "metrics", "healthz", "static", "robots.txt", "favicon.ico"};
  if (alias.size() < 3 || alias.size() > 64) return false;
  const bool charset = std::all_of(alias.begin(), alias.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
  });
  return charset && std::find(kOwnPaths.begin(), kOwnPaths.end(), lower(alias)) == kOwnPaths.end();
}

void check_alias(std::string_view alias) {
  bool ok = true;
  try {
    keel::shortener::validate_alias(alias);
  } catch (const InvalidAlias&) {
    ok = false;
  }
  KEEL_FUZZ_CHECK(ok == reference_alias_ok(alias), "validate_alias('{}') says {}", alias,
                  ok ? "valid" : "invalid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  keel::fuzz::Input input(data, size);
  const std::uint8_t limit = input.byte();
  UrlPolicy policy;
  if (limit >= 0x80) policy.max_length = 8 + (limit & 0x7f);
  const std::string_view url = input.until('\n');
  const std::string_view own_host = input.until('\n');
  if (!own_host.empty()) policy.own_hosts.emplace_back(own_host);
  const std::string_view alias = input.until('\n');

  check_url(url, policy);
  check_alias(alias);
  return 0;
}
