// The URL shortener's JSON request body: POST /api/v1/links (case_studies/url_shortener/api.h),
// through the real Router and Api on a Shortener over SQLite in memory, without sockets: the
// handler runs on a Request built here with the fuzz input as its body, and an HttpError becomes
// its response as keel::http::Server would make it.
//
// Checked: the status is one the API documents for this route (201, 200, 400, 409, 429; never
// a 500, which any other exception would give); a 4xx body is {"error": {"code", "message"}}
// with a documented code for that status; a 2xx body is the link: a code (the alias when one was
// asked for, else a 7-character code), short_url = base URL + "/" + code, url = the request's
// URL normalised, created_at the clock's time, expires_at the requested one; the error is the
// one a reference reading of the body predicts (invalid_json, invalid_url, ...); and an
// accepted expires_at is a strict RFC 3339 date-time.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "case_studies/url_shortener/api.h"
#include "case_studies/url_shortener/link_store.h"
#include "case_studies/url_shortener/shortener.h"
#include "case_studies/url_shortener/url.h"
#include "fuzz/check.h"
#include "fuzz/route.h"
#include "keel/core/clock.h"
#include "keel/core/encoding.h"
#include "keel/http/router.h"
#include "keel/pubsub/event_bus.h"

namespace {

namespace http = keel::http;
namespace json = boost::json;
using keel::shortener::Api;

constexpr std::string_view kBaseUrl = "https://sho.rt";
// Inputs per service: then a fresh one, so that the database stays small.
constexpr std::size_t kInputsPerService = 20'000;

// The service under test, on SQLite in memory, with a clock that stands still at 2026-01-01 and
// a creation limit that a fuzzer does not reach (unless the input asks for a tight one).
struct Service {
  explicit Service(bool tight_limit)
      : api(shortener, bus, analytics,
            {.create_limit = {.algorithm = keel::ratelimit::Algorithm::token_bucket,
                              .rate_per_second = 1'000'000,
                              .amount = tight_limit ? 1 : 1'000'000'000},
             .clock = &clock}) {
    api.add_routes(router);
  }
  keel::ManualClock clock;
  keel::shortener::SqliteLinkStore store{":memory:"};
  keel::shortener::Shortener shortener{
      store, {.base_url = std::string(kBaseUrl), .code_key = "fuzz", .clock = &clock}};
  keel::pubsub::EventBus bus;
  keel::shortener::ClickAnalytics analytics{bus};
  Api api;
  http::Router router;
};

http::Response post(const http::Router& router, std::string_view body) {
  return keel::fuzz::route_json(router, http::Method::post, "/api/v1/links", "sho.rt", body);
}

bool digits(std::string_view s, std::size_t at, std::size_t n) {
  if (at + n > s.size()) return false;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// RFC 3339 section 5.6 date-time, strictly: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), with
// 't' or a space allowed for 'T' as api.h's parser does.
bool strict_rfc3339(std::string_view s) {
  if (!digits(s, 0, 4) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2) ||
      s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return false;
  }
  std::size_t i = 19;
  if (s[i] == '.') {
    const std::size_t begin = ++i;
    while (digits(s, i, 1)) ++i;
    if (i == begin) return false;
  }
  if (i + 1 == s.size() && (s[i] == 'Z' || s[i] == 'z')) return true;
  return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(s, i + 1, 2) &&
         s[i + 3] == ':' && digits(s, i + 4, 2);
}

// The error code a reading of the body predicts before the Shortener is asked, or "" when the
// request reaches the Shortener.
std::string expected_early_error(std::string_view body) {
  boost::system::error_code error;
  const json::value value = json::parse(json::string_view(body.data(), body.size()), error);
  if (error || !value.is_object()) return "invalid_json";
  const json::object& fields = value.as_object();
  const json::value* url = fields.if_contains("url");
  if (url == nullptr || !url->is_string()) return "invalid_url";
  const json::value* alias = fields.if_contains("alias");
  if (alias != nullptr && !alias->is_null() && !alias->is_string()) return "invalid_alias";
  const json::value* expires = fields.if_contains("expires_at");
  if (expires != nullptr && !expires->is_null() && !expires->is_string()) return "invalid_expiry";
  return "";
}

void check_error(const http::Response& response, std::string_view body) {
  const unsigned status = response.result_int();
  boost::system::error_code error;
  const json::value value = json::parse(response.body(), error);
  KEEL_FUZZ_CHECK(!error && value.is_object() && value.as_object().size() == 1,
                  "a {} body that is not an error object: {}", status, response.body());
  const json::value* inner = value.as_object().if_contains("error");
  KEEL_FUZZ_CHECK(inner != nullptr && inner->is_object(), "no \"error\" in {}", response.body());
  const json::value* code = inner->as_object().if_contains("code");
  const json::value* message = inner->as_object().if_contains("message");
  KEEL_FUZZ_CHECK(
      code != nullptr && code->is_string() && message != nullptr && message->is_string(),
      "error without code or message: {}", response.body());
  const std::string code_text(code->as_string());
  static const std::set<std::string> kBadRequest = {"invalid_json", "invalid_url", "invalid_alias",
                                                    "invalid_expiry"};
  if (status == 400) {
    KEEL_FUZZ_CHECK(kBadRequest.contains(code_text), "400 with undocumented code '{}' for {}",
                    code_text, keel::quote_for_message(body));
  } else if (status == 409) {
    KEEL_FUZZ_CHECK(code_text == "alias_taken", "409 with code '{}'", code_text);
  } else {
    KEEL_FUZZ_CHECK(status == 429 && code_text == "rate_limited", "{} with code '{}'", status,
                    code_text);
    return;
  }
  const std::string early = expected_early_error(body);
  if (!early.empty()) {
    KEEL_FUZZ_CHECK(code_text == early, "'{}' for {}, expected '{}'", code_text,
                    keel::quote_for_message(body), early);
  }
}

void check_link(const http::Response& response, std::string_view body, const Service& service) {
  const json::object request = json::parse(json::string_view(body.data(), body.size())).as_object();
  KEEL_FUZZ_CHECK(expected_early_error(body).empty(), "{} accepted", keel::quote_for_message(body));
  boost::system::error_code error;
  const json::value value = json::parse(response.body(), error);
  KEEL_FUZZ_CHECK(!error && value.is_object(), "a 2xx body that is not an object: {}",
                  response.body());
  const json::object& link = value.as_object();
  const auto text = [&](std::string_view name) {
    const json::value* v = link.if_contains(name);
    KEEL_FUZZ_CHECK(v != nullptr && v->is_string(), "\"{}\" missing in {}", name, response.body());
    return std::string(v->as_string());
  };
  const std::string code = text("code");
  const json::value* alias = request.if_contains("alias");
  if (alias != nullptr && alias->is_string()) {
    KEEL_FUZZ_CHECK(code == alias->as_string(), "alias '{}' got code '{}'",
                    std::string_view(alias->as_string()), code);
    keel::shortener::validate_alias(code);  // throws (and so fails) when it let a bad one in
  } else {
    KEEL_FUZZ_CHECK(keel::shortener::is_code(code), "'{}' is not a code", code);
  }
  KEEL_FUZZ_CHECK(text("short_url") == fmt::format("{}/{}", kBaseUrl, code), "short_url {}",
                  text("short_url"));
  const std::string url = text("url");
  KEEL_FUZZ_CHECK(url == keel::shortener::normalize_url(request.at("url").as_string()),
                  "url '{}' is not the request's, normalised", url);
  KEEL_FUZZ_CHECK(text("created_at") == keel::shortener::format_rfc3339(service.clock.wall_now()),
                  "created_at {}", text("created_at"));
  const json::value* expires = request.if_contains("expires_at");
  const json::value* stored = link.if_contains("expires_at");
  KEEL_FUZZ_CHECK(stored != nullptr, "no expires_at in {}", response.body());
  if (expires == nullptr || expires->is_null()) {
    KEEL_FUZZ_CHECK(stored->is_null(), "expires_at {} without one asked for",
                    json::serialize(*stored));
    return;
  }
  const std::string asked(expires->as_string());
  KEEL_FUZZ_CHECK(strict_rfc3339(asked), "expires_at '{}' accepted, not RFC 3339", asked);
  const std::optional<keel::WallTime> at = keel::shortener::parse_rfc3339(asked);
  KEEL_FUZZ_CHECK(at && *at > service.clock.wall_now(), "expires_at '{}' accepted", asked);
  KEEL_FUZZ_CHECK(
      stored->is_string() && stored->as_string() == keel::shortener::format_rfc3339(*at),
      "expires_at {} for '{}'", json::serialize(*stored), asked);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::unique_ptr<Service> service;
  static std::size_t served = 0;
  if (size == 0) return 0;
  // The first byte: 'T' asks for a service with a creation limit of one (to reach 429).
  const bool tight = data[0] == 'T';
  if (tight) {
    service.reset();
    served = 0;
  }
  if (!service || served++ == kInputsPerService) {
    service = std::make_unique<Service>(tight);
    served = 1;
  }
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  const http::Response response = post(service->router, body);
  switch (response.result_int()) {
    case 200:
    case 201:
      check_link(response, body, *service);
      break;
    case 400:
    case 409:
    case 429:
      check_error(response, body);
      break;
    default:
      KEEL_FUZZ_CHECK(false, "status {} for {}", response.result_int(),
                      keel::quote_for_message(body));
  }
  if (tight) {
    // The first request took the only permit (before its body was read): the next must wait.
    const http::Response again = post(service->router, body);
    KEEL_FUZZ_CHECK(again.result_int() == 429, "a second creation passed a limit of one: {}",
                    again.result_int());
    KEEL_FUZZ_CHECK(again.count("Retry-After") == 1, "429 without Retry-After");
    check_error(again, body);
    service.reset();
  }
  return 0;
}
