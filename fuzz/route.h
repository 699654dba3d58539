// What the JSON API targets share: one request through a service's real Router, no sockets.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <exception>
#include <string>
#include <string_view>

#include "fuzz/check.h"
#include "keel/http/router.h"

namespace keel::fuzz {

// `body` as a JSON request from a documentation address (192.0.2.7). An HttpError becomes the
// error response the server would send; any other exception is a 500, which breaks the property
// every target checks: bad input gets a 4xx, never a server error.
inline http::Response route_json(const http::Router& router, http::Method method,
                                 std::string_view target, std::string_view host,
                                 std::string_view body) {
  http::Request request;
  request.message.method(method);
  request.message.target(std::string(target));
  request.message.version(11);
  request.message.set(http::Field::host, std::string(host));
  request.message.set(http::Field::content_type, "application/json");
  request.message.body() = std::string(body);
  request.message.prepare_payload();
  request.client_address = boost::asio::ip::make_address("192.0.2.7");
  try {
    return router.route(request);
  } catch (const http::HttpError& e) {
    return http::error_response(e.status(), e.code(), e.what());
  } catch (const std::exception& e) {
    KEEL_FUZZ_CHECK(false, "the handler threw (a 500): {}", e.what());
  }
  __builtin_unreachable();
}

}  // namespace keel::fuzz
