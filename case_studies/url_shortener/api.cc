#include "case_studies/url_shortener/api.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <cstdio>
#include <ctime>

#include "case_studies/url_shortener/web.h"
#include "keel/core/encoding.h"
#include "keel/ratelimit/http_headers.h"

namespace keel::shortener {

namespace {

using http::Field;
using http::HttpError;
using http::Method;
using http::Status;

boost::json::object link_json(const Shortener& shortener, const Link& link) {
  return {{"code", link.code},
          {"short_url", shortener.short_url(link.code)},
          {"url", link.url},
          {"created_at", format_rfc3339(link.created_at)},
          {"expires_at", link.expires_at ? boost::json::value(format_rfc3339(*link.expires_at))
                                         : boost::json::value(nullptr)}};
}

Status status_of(const std::string& code) {
  return code == "alias_taken" ? Status::conflict : Status::bad_request;
}

}  // namespace

std::string creation_limit_key(const boost::asio::ip::address& client) {
  if (client.is_v4()) return client.to_string();
  const boost::asio::ip::address_v6 v6 = client.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  boost::asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return fmt::format("{}/64", boost::asio::ip::address_v6(bytes).to_string());
}

Api::Api(Shortener& shortener, pubsub::EventBus& bus, ClickStats& analytics, ApiOptions options)
    : shortener_(shortener),
      bus_(bus),
      analytics_(analytics),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : default_clock()),
      create_limiter_(options_.create_limit, {}, clock_) {
  if (options_.redirect_status != 301 && options_.redirect_status != 302) {
    throw std::invalid_argument("Api: redirect_status must be 301 or 302");
  }
}

void Api::add_routes(http::Router& router) {
  router.add(Method::post, "/api/v1/links", [this](http::Request& r) { return create(r); });
  router.add(Method::get, "/api/v1/links/{code}", [this](http::Request& r) { return show(r); });
  router.add(Method::delete_, "/api/v1/links/{code}",
             [this](http::Request& r) { return remove(r); });
  router.add(Method::get, "/{code}", [this](http::Request& r) { return follow(r); });
  // The web page: GET / and GET /{code}+ (the router tries "{code}+" before "{code}", and no
  // code or alias can end in '+'), and /static/.
  add_web_routes(router, shortener_);
}

http::Response Api::create(http::Request& request) {
  const ratelimit::Decision decision =
      create_limiter_.try_acquire(creation_limit_key(request.client_address));
  if (!decision.allowed) {
    http::Response response = http::error_response(
        Status::too_many_requests, "rate_limited", "too many links created from this address");
    for (const auto& [name, value] : ratelimit::rate_limit_headers(decision)) {
      response.set(name, value);
    }
    return response;
  }
  const boost::json::value body = request.json();
  if (!body.is_object()) throw HttpError(Status::bad_request, "invalid_json", "expected an object");
  const boost::json::object& fields = body.as_object();
  const auto text = [&](std::string_view name) -> std::optional<std::string> {
    const boost::json::value* value = fields.if_contains(name);
    if (value == nullptr || value->is_null()) return std::nullopt;
    if (!value->is_string()) {
      const char* code = name == "url"     ? "invalid_url"
                         : name == "alias" ? "invalid_alias"
                                           : "invalid_expiry";
      throw HttpError(Status::bad_request, code, fmt::format("\"{}\" must be a string", name));
    }
    return std::string(value->as_string());
  };
  CreateRequest create;
  const std::optional<std::string> url = text("url");
  if (!url) throw HttpError(Status::bad_request, "invalid_url", "\"url\" is required");
  create.url = *url;
  create.alias = text("alias");
  if (const std::optional<std::string> expires = text("expires_at")) {
    create.expires_at = parse_rfc3339(*expires);
    if (!create.expires_at) {
      throw HttpError(Status::bad_request, "invalid_expiry",
                      fmt::format("expires_at {} is not an RFC 3339 date-time",
                                  quote_for_message(*expires)));
    }
  }
  try {
    const CreateResult result = shortener_.create(create);
    return http::json_response(result.created ? Status::created : Status::ok,
                               link_json(shortener_, result.link));
  } catch (const ShortenerError& e) {
    throw HttpError(status_of(e.code()), e.code(), e.what());
  }
}

http::Response Api::follow(http::Request& request) {
  const std::string& code = request.param("code");
  const Resolution to = shortener_.resolve(code);
  if (to.state == Resolution::State::not_found) {
    return http::error_response(Status::not_found, "not_found", "no such link");
  }
  if (to.state == Resolution::State::gone) {
    return http::error_response(Status::gone, "gone", "this link expired or was deleted");
  }
  const bool permanent = options_.redirect_status == 301;
  http::Response response = http::redirect_response(
      permanent ? Status::moved_permanently : Status::found, to.url);
  response.set(Field::cache_control,
               permanent ? fmt::format("private, max-age={}", options_.permanent_max_age.count())
                         : std::string("no-store"));
  publish_click(bus_, click_from_request(code, request, clock_.wall_now()));
  return response;
}

http::Response Api::show(http::Request& request) {
  const std::optional<Link> link = shortener_.find(request.param("code"));
  if (!link || link->deleted) {
    return http::error_response(Status::not_found, "not_found", "no such link");
  }
  boost::json::object body = link_json(shortener_, *link);
  const LinkStats stats = analytics_.stats(link->code);
  boost::json::array referrers, daily;
  for (const auto& [host, clicks] : stats.referrers) {
    referrers.push_back({{"referrer", host}, {"clicks", clicks}});
  }
  for (const auto& [date, clicks] : stats.daily) daily.push_back({{"date", date}, {"clicks", clicks}});
  body["clicks"] = stats.clicks;
  body["referrers"] = std::move(referrers);
  body["daily"] = std::move(daily);
  return http::json_response(Status::ok, body);
}

bool Api::authorised(const http::Request& request) const {
  if (options_.admin_token.empty()) return false;
  const std::string_view header = request.header(Field::authorization).value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  if (!header.starts_with(kBearer)) return false;
  // Constant time: compare fixed-length digests, so neither the content nor the length of the
  // token leaks through the timing of the comparison.
  const std::string given = sha256_hex(header.substr(kBearer.size()));
  const std::string expected = sha256_hex(options_.admin_token);
  return CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
}

http::Response Api::remove(http::Request& request) {
  if (!authorised(request)) {
    http::Response response =
        http::error_response(Status::unauthorized, "unauthorized", "a valid admin token is required");
    response.set(Field::www_authenticate, "Bearer");
    return response;
  }
  if (!shortener_.remove(request.param("code"))) {
    return http::error_response(Status::not_found, "not_found", "no such link");
  }
  http::Response response(Status::no_content, 11);
  return response;
}

}  // namespace keel::shortener
