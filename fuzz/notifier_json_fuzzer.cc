// The notifier's outside input: the JSON bodies of POST /api/v1/notifications,
// PUT /api/v1/users/{id}/preferences and PUT /api/v1/users/{id}/contacts (through the real
// Router and Api on a Notifier over SQLite in memory, no sockets), and the --config file
// (parse_config, then make_dispatcher on its providers). The first byte of the input picks which
// (mod 4); the rest is the body or the file.
//
// Checked:
// - notifications: the status is one the API documents (202, 200, 400, 422; never a 500); a 400
//   is {"error": {"code": "invalid_request", "field", "message"}} naming the field (non-empty,
//   but for an unknown key, which it names as sent, "" included), or
//   invalid_json for a body that does not parse; a 202 is the stored notification: its id reads
//   back with GET, its user_id and category are the request's, one delivery per channel named;
//   a body that is not a JSON object is never accepted;
// - preferences and contacts: 200 or 400 (same error shape); a 200 answers what GET then reads
//   back; a 400 leaves what was stored exactly as it was (a bad request loses nothing and
//   changes nothing);
// - the config: parse_config and make_dispatcher either succeed or throw std::invalid_argument
//   whose message names the field ("config: ..." / "providers..."), nothing else.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "case_studies/notification_system/api.h"
#include "case_studies/notification_system/config.h"
#include "case_studies/notification_system/dispatcher.h"
#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/sqlite_store.h"
#include "fuzz/check.h"
#include "fuzz/route.h"
#include "keel/core/clock.h"
#include "keel/core/encoding.h"
#include "keel/core/scheduler.h"
#include "keel/http/router.h"

namespace {

namespace http = keel::http;
namespace json = boost::json;
namespace notifier = keel::notifier;

// Inputs per service: then a fresh one, so that the database stays small.
constexpr std::size_t kInputsPerService = 5'000;

// The service under test: SQLite in memory, a clock that stands still, workers that never run
// (nothing drives the manual scheduler), every channel on a console provider writing to a
// string stream.
struct Service {
  Service() {
    notifier::NotifierOptions options;
    options.clock = &clock;
    options.scheduler = &scheduler;
    options.critical_workers = {.executor = &scheduler, .threads = 1};
    options.standard_workers = {.executor = &scheduler, .threads = 1};
    options.poll_interval = keel::Duration::zero();
    options.templates = {{"welcome", {.subject = "Welcome {{name}}", .body = "Hello {{name}}!"}}};
    service = std::make_unique<notifier::Notifier>(store, *dispatcher, options);
    api = std::make_unique<notifier::Api>(*service);
    api->add_routes(router);
  }
  keel::ManualClock clock;
  keel::ManualScheduler scheduler{clock};
  notifier::SqliteNotificationStore store{":memory:"};
  std::ostringstream console;
  std::unique_ptr<notifier::Dispatcher> dispatcher =
      notifier::make_dispatcher(json::value(nullptr), {.clock = &clock, .console = &console});
  std::unique_ptr<notifier::Notifier> service;
  std::unique_ptr<notifier::Api> api;
  http::Router router;
};

http::Response call(const http::Router& router, http::Method method, std::string_view target,
                    std::string_view body) {
  return keel::fuzz::route_json(router, method, target, "notifier", body);
}

json::value parse_body(const http::Response& response) {
  boost::system::error_code error;
  json::value value = json::parse(response.body(), error);
  KEEL_FUZZ_CHECK(!error, "a {} response that is not JSON: {}", response.result_int(),
                  response.body());
  return value;
}

// A 400: invalid_json from the body parser, or invalid_request naming a field.
void check_bad_request(const http::Response& response, std::string_view body) {
  const json::value value = parse_body(response);
  const json::object* error = value.is_object() &&
                                      value.as_object().if_contains("error") != nullptr &&
                                      value.as_object().at("error").is_object()
                                  ? &value.as_object().at("error").as_object()
                                  : nullptr;
  KEEL_FUZZ_CHECK(error != nullptr, "a 400 without an error object: {}", response.body());
  const json::value* code = error->if_contains("code");
  const json::value* message = error->if_contains("message");
  KEEL_FUZZ_CHECK(code != nullptr && code->is_string() && message != nullptr &&
                      message->is_string() && !message->as_string().empty(),
                  "an error without code or message: {}", response.body());
  if (code->as_string() == "invalid_json") {
    boost::system::error_code parse_error;
    (void)json::parse(json::string_view(body.data(), body.size()), parse_error);
    KEEL_FUZZ_CHECK(parse_error, "invalid_json for a body that parses: {}",
                    keel::quote_for_message(body));
    return;
  }
  KEEL_FUZZ_CHECK(code->as_string() == "invalid_request", "400 with code {}", response.body());
  // The field is the one at fault; for an unknown key it is that key as sent, which may be ""
  // (fuzz/corpus/notifier_json/preferences_empty_key: {"": null}).
  const json::value* field = error->if_contains("field");
  KEEL_FUZZ_CHECK(
      field != nullptr && field->is_string() &&
          (!field->as_string().empty() || message->as_string().starts_with("unknown field")),
      "invalid_request naming no field: {}", response.body());
}

void fuzz_notification(Service& s, std::string_view body) {
  const http::Response r = call(s.router, http::Method::post, "/api/v1/notifications", body);
  const unsigned status = r.result_int();
  KEEL_FUZZ_CHECK(status == 202 || status == 200 || status == 400 || status == 422,
                  "status {} for {}", status, keel::quote_for_message(body));
  if (status == 400) return check_bad_request(r, body);
  if (status == 422) return;  // an idempotency key used before with another body
  boost::system::error_code error;
  const json::value request = json::parse(json::string_view(body.data(), body.size()), error);
  KEEL_FUZZ_CHECK(!error && request.is_object(), "accepted a body that is not an object: {}",
                  keel::quote_for_message(body));
  const json::value response = parse_body(r);
  KEEL_FUZZ_CHECK(response.is_object(), "the notification is not an object: {}", r.body());
  const json::object& n = response.as_object();
  KEEL_FUZZ_CHECK(n.at("user_id") == request.as_object().at("user_id"), "user_id {} stored as {}",
                  json::serialize(request.as_object().at("user_id")),
                  json::serialize(n.at("user_id")));
  KEEL_FUZZ_CHECK(n.at("category") == request.as_object().at("category"), "category changed: {}",
                  r.body());
  std::set<std::string> channels;
  for (const json::value& c : request.as_object().at("channels").as_array()) {
    channels.insert(std::string(c.as_string()));
  }
  KEEL_FUZZ_CHECK(n.at("deliveries").as_array().size() == channels.size(),
                  "{} channels asked, {} deliveries: {}", channels.size(),
                  n.at("deliveries").as_array().size(), r.body());
  const std::string id(n.at("id").as_string());
  const http::Response stored =
      call(s.router, http::Method::get, "/api/v1/notifications/" + id, "");
  KEEL_FUZZ_CHECK(stored.result_int() == 200, "GET {} after a {}: {}", id, status,
                  stored.result_int());
}

// PUT then GET; a refused PUT changes nothing.
void fuzz_user_document(Service& s, std::string_view path, std::string_view body) {
  const std::string target = fmt::format("/api/v1/users/fuzz/{}", path);
  const std::string before = call(s.router, http::Method::get, target, "").body();
  const http::Response r = call(s.router, http::Method::put, target, body);
  const unsigned status = r.result_int();
  KEEL_FUZZ_CHECK(status == 200 || status == 400, "PUT {}: status {} for {}", path, status,
                  keel::quote_for_message(body));
  const http::Response after = call(s.router, http::Method::get, target, "");
  KEEL_FUZZ_CHECK(after.result_int() == 200, "GET {} answered {}", path, after.result_int());
  if (status == 400) {
    check_bad_request(r, body);
    KEEL_FUZZ_CHECK(after.body() == before, "a refused PUT {} changed {} into {}", path, before,
                    after.body());
  } else {
    KEEL_FUZZ_CHECK(parse_body(after) == parse_body(r), "PUT {} answered {} but GET reads {}", path,
                    r.body(), after.body());
  }
}

void fuzz_config(std::string_view text) {
  notifier::NotifierConfig config;
  try {
    config = notifier::parse_config(text);
  } catch (const std::invalid_argument& e) {
    KEEL_FUZZ_CHECK(std::string_view(e.what()).starts_with("config: "),
                    "a config error that names nothing: {}", e.what());
    return;
  }
  try {
    keel::ManualClock clock;
    std::ostringstream console;
    (void)notifier::make_dispatcher(config.providers,
                                    {.clock = &clock,
                                     .console = &console,
                                     .allowed_private_hosts = config.allowed_private_hosts});
  } catch (const std::invalid_argument& e) {
    KEEL_FUZZ_CHECK(std::string_view(e.what()).starts_with("providers"),
                    "a providers error that names nothing: {}", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::unique_ptr<Service> service;
  static std::size_t inputs = 0;
  keel::fuzz::Input input(data, size);
  const std::uint8_t which = input.byte() % 4;
  const std::string_view body = input.rest();
  if (which == 3) {
    fuzz_config(body);
    return 0;
  }
  if (!service || ++inputs % kInputsPerService == 0) service = std::make_unique<Service>();
  switch (which) {
    case 0:
      fuzz_notification(*service, body);
      break;
    case 1:
      fuzz_user_document(*service, "preferences", body);
      break;
    default:
      fuzz_user_document(*service, "contacts", body);
      break;
  }
  return 0;
}
