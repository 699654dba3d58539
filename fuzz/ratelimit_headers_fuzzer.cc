// Rate-limit response headers (keel/ratelimit/http_headers.h) for any Decision and options.
//
// Input: the decision (allowed, limit, remaining, retry_after, reset_after), the options (which
// fields, an optional window), then the policy name.
// Checked: a policy name is refused (std::invalid_argument) exactly when it cannot be rendered
// as a structured-field string without escapes; every field name is a token and every value a
// valid field value; Retry-After is there exactly on a denial that waiting can cure, as
// delay-seconds (RFC 9110: 1*DIGIT) rounded up; RateLimit-Policy and RateLimit parse as
// structured-field items (RFC 8941: the policy name as an sf-string, then q=, w=, r=, t= as
// sf-integers, which have at most 15 digits) with the non-negative values the draft requires;
// the X-RateLimit-* fields are non-negative decimal integers agreeing with the draft fields;
// counts are the decision's, clamped to that range as the header documents.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/check.h"
#include "keel/ratelimit/http_headers.h"

namespace {

using keel::Duration;
using keel::ratelimit::Decision;
using keel::ratelimit::HeaderOptions;
using keel::ratelimit::Headers;

constexpr std::int64_t kMaxSfInteger = 999'999'999'999'999;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lcalpha(char c) { return c >= 'a' && c <= 'z'; }

// RFC 9110 token characters.
bool is_tchar(char c) {
  return is_digit(c) || (c >= 'A' && c <= 'Z') || is_lcalpha(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 9110 field-value: visible ASCII (or obs-text) and inner spaces/tabs; no CR, LF or NUL.
bool is_field_value(std::string_view v) {
  if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t'))
    return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

// delay-seconds / a non-negative decimal integer: 1*DIGIT.
std::optional<std::int64_t> digits_value(std::string_view v) {
  if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), is_digit)) return std::nullopt;
  return std::stoll(std::string(v));
}

// An RFC 8941 sf-item whose bare item is an sf-string and whose parameters are sf-integers.
struct Item {
  std::string name;
  std::vector<std::pair<std::string, std::int64_t>> params;
  std::optional<std::int64_t> param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
};

class ItemParser {
 public:
  explicit ItemParser(std::string_view text) : rest_(text) {}

  std::optional<Item> parse() {
    Item item;
    if (!string(item.name)) return std::nullopt;
    while (!rest_.empty()) {
      if (!take(';')) return std::nullopt;
      while (take(' ')) {
      }
      std::string key;
      std::int64_t value = 0;
      if (!key_(key) || !take('=') || !integer(value)) return std::nullopt;
      item.params.emplace_back(std::move(key), value);
    }
    return item;
  }

 private:
  bool take(char c) {
    if (rest_.empty() || rest_.front() != c) return false;
    rest_.remove_prefix(1);
    return true;
  }
  bool string(std::string& out) {
    if (!take('"')) return false;
    while (!rest_.empty()) {
      const char c = rest_.front();
      rest_.remove_prefix(1);
      if (c == '"') return true;
      if (c == '\\') {
        if (rest_.empty() || (rest_.front() != '"' && rest_.front() != '\\')) return false;
        out += rest_.front();
        rest_.remove_prefix(1);
      } else if (c < 0x20 || c > 0x7e) {
        return false;
      } else {
        out += c;
      }
    }
    return false;
  }
  bool key_(std::string& out) {
    if (rest_.empty() || !(is_lcalpha(rest_.front()) || rest_.front() == '*')) return false;
    while (!rest_.empty() &&
           (is_lcalpha(rest_.front()) || is_digit(rest_.front()) ||
            std::string_view("_-.*").find(rest_.front()) != std::string_view::npos)) {
      out += rest_.front();
      rest_.remove_prefix(1);
    }
    return true;
  }
  bool integer(std::int64_t& out) {
    const bool negative = take('-');
    std::size_t n = 0;
    while (n < rest_.size() && is_digit(rest_[n])) ++n;
    if (n == 0 || n > 15) return false;
    out = std::stoll(std::string(rest_.substr(0, n))) * (negative ? -1 : 1);
    rest_.remove_prefix(n);
    return true;
  }

  std::string_view rest_;
};

std::optional<std::string_view> find(const Headers& headers, std::string_view name) {
  std::optional<std::string_view> found;
  for (const auto& [n, v] : headers) {
    if (n != name) continue;
    KEEL_FUZZ_CHECK(!found, "field {} given twice", name);
    found = v;
  }
  return found;
}

// The non-negative integer of a draft parameter, checked present and in range.
std::int64_t param(const Item& item, std::string_view key, std::string_view field) {
  const std::optional<std::int64_t> value = item.param(key);
  KEEL_FUZZ_CHECK(value.has_value(), "{} has no {}=", field, key);
  KEEL_FUZZ_CHECK(*value >= 0, "{} has {}={} (must be non-negative)", field, key, *value);
  return *value;
}

// What the header documents: counts clamped to what an sf-integer of the draft can carry.
std::int64_t field_integer(std::int64_t n) { return std::clamp<std::int64_t>(n, 0, kMaxSfInteger); }

void check_draft(const Headers& headers, const Decision& decision, const HeaderOptions& options,
                 std::int64_t reset) {
  const std::optional<std::string_view> policy_field = find(headers, "RateLimit-Policy");
  const std::optional<std::string_view> field = find(headers, "RateLimit");
  KEEL_FUZZ_CHECK(
      policy_field.has_value() == options.draft_fields && field.has_value() == options.draft_fields,
      "draft fields present: {}", policy_field.has_value());
  if (!options.draft_fields) return;
  const std::optional<Item> policy = ItemParser(*policy_field).parse();
  KEEL_FUZZ_CHECK(policy.has_value(), "RateLimit-Policy '{}' is not an sf-item", *policy_field);
  KEEL_FUZZ_CHECK(policy->name == options.policy, "policy '{}' rendered as '{}'", options.policy,
                  policy->name);
  const std::int64_t q = param(*policy, "q", "RateLimit-Policy");
  KEEL_FUZZ_CHECK(q == field_integer(decision.limit), "q={} for a limit of {}", q, decision.limit);
  if (options.window) {
    KEEL_FUZZ_CHECK(
        param(*policy, "w", "RateLimit-Policy") == keel::ratelimit::header_seconds(*options.window),
        "w= is not the window in seconds: {}", *policy_field);
  } else {
    KEEL_FUZZ_CHECK(!policy->param("w"), "w= without a window: {}", *policy_field);
  }
  const std::optional<Item> limit = ItemParser(*field).parse();
  KEEL_FUZZ_CHECK(limit.has_value(), "RateLimit '{}' is not an sf-item", *field);
  KEEL_FUZZ_CHECK(limit->name == options.policy, "RateLimit names '{}'", limit->name);
  const std::int64_t r = param(*limit, "r", "RateLimit");
  KEEL_FUZZ_CHECK(r == field_integer(decision.remaining), "r={} for {} remaining", r,
                  decision.remaining);
  KEEL_FUZZ_CHECK(param(*limit, "t", "RateLimit") == reset, "t= is not {}: {}", reset, *field);
  if (options.legacy_fields) {
    KEEL_FUZZ_CHECK(digits_value(*find(headers, "X-RateLimit-Limit")) == q &&
                        digits_value(*find(headers, "X-RateLimit-Remaining")) == r,
                    "legacy fields disagree with q={} r={}", q, r);
  }
}

void check(const Decision& decision, const HeaderOptions& options) {
  Headers headers;
  try {
    headers = keel::ratelimit::rate_limit_headers(decision, options);
  } catch (const std::invalid_argument&) {
    KEEL_FUZZ_CHECK(
        options.policy.empty() ||
            !std::all_of(options.policy.begin(), options.policy.end(),
                         [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; }),
        "the policy name '{}' was refused", options.policy);
    return;
  }
  for (const auto& [name, value] : headers) {
    KEEL_FUZZ_CHECK(!name.empty() && std::all_of(name.begin(), name.end(), is_tchar),
                    "field name '{}' is not a token", name);
    KEEL_FUZZ_CHECK(is_field_value(value), "{}: '{}' is not a field value", name, value);
  }

  const std::optional<std::string_view> retry = find(headers, "Retry-After");
  const bool curable = !decision.allowed && decision.retry_after != Duration::max();
  KEEL_FUZZ_CHECK(retry.has_value() == curable, "Retry-After present: {}", retry.has_value());
  if (retry) {
    const std::optional<std::int64_t> seconds = digits_value(*retry);
    KEEL_FUZZ_CHECK(seconds.has_value(), "Retry-After '{}' is not delay-seconds", *retry);
    KEEL_FUZZ_CHECK(*seconds == keel::ratelimit::header_seconds(decision.retry_after),
                    "Retry-After {} for {} ns", *seconds, decision.retry_after.count());
  }

  const std::int64_t reset = keel::ratelimit::header_seconds(decision.reset_after);
  check_draft(headers, decision, options, reset);
  if (options.legacy_fields) {
    for (const char* name : {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}) {
      const std::optional<std::string_view> value = find(headers, name);
      KEEL_FUZZ_CHECK(value && digits_value(*value), "{} is '{}'", name, value.value_or("absent"));
    }
    KEEL_FUZZ_CHECK(digits_value(*find(headers, "X-RateLimit-Reset")) == reset,
                    "X-RateLimit-Reset is not {}", reset);
  } else {
    KEEL_FUZZ_CHECK(!find(headers, "X-RateLimit-Limit"), "legacy fields when turned off");
  }
}

// Rounded up, never negative, and within a second of the duration.
void check_seconds(Duration d) {
  const std::int64_t s = keel::ratelimit::header_seconds(d);
  KEEL_FUZZ_CHECK(s >= 0 && s <= kMaxSfInteger, "header_seconds({} ns) = {}", d.count(), s);
  if (d <= Duration::zero()) {
    KEEL_FUZZ_CHECK(s == 0, "header_seconds({} ns) = {}", d.count(), s);
    return;
  }
  const auto whole = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  KEEL_FUZZ_CHECK(s == whole || s == whole + 1, "header_seconds({} ns) = {}", d.count(), s);
  KEEL_FUZZ_CHECK((s == whole) == (std::chrono::seconds(whole) == d), "rounding of {} ns",
                  d.count());
}

Duration duration(keel::fuzz::Input& input) {
  const auto ns = input.integer<std::int64_t>();
  switch (input.byte() % 4) {
    case 0:
      return Duration(ns);
    case 1:
      return Duration(ns % 1'000'000'000'000);  // within ~17 minutes: the usual range
    case 2:
      return Duration::max();
    default:
      return std::chrono::seconds(ns % 100'000);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  keel::fuzz::Input input(data, size);
  Decision decision;
  decision.allowed = input.boolean();
  decision.limit = input.integer<std::int64_t>();
  decision.remaining = input.integer<std::int64_t>();
  decision.retry_after = duration(input);
  decision.reset_after = duration(input);
  HeaderOptions options;
  const std::uint8_t flags = input.byte();
  options.draft_fields = (flags & 1) != 0;
  options.legacy_fields = (flags & 2) != 0;
  const Duration window = duration(input);
  if ((flags & 4) != 0) options.window = window;
  if ((flags & 8) == 0) options.policy = std::string(input.rest());

  check_seconds(decision.retry_after);
  check_seconds(decision.reset_after);
  check(decision, options);
  return 0;
}
