// keel::http messages: the request a handler receives and the helpers that build responses.
//
// Requests and responses are Boost.Beast messages with string bodies; keel adds what a service
// needs around them: the client's address, the route's parameters, the path and query split
// from the target, JSON parsing with a clean 400, and JSON error bodies of one shape:
//
//   {"error": {"code": "invalid_url", "message": "the URL must be absolute http or https"}}
//
// A handler that throws HttpError gets exactly that response; any other exception becomes a 500
// (logged, with no detail sent to the client).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::http {

namespace beast_http = boost::beast::http;
using Method = beast_http::verb;
using Status = beast_http::status;
using Field = beast_http::field;
using Response = beast_http::response<beast_http::string_body>;

// An error a handler reports to the client: status, a stable machine-readable code, and a
// message for people. Rendered by error_response().
class HttpError : public std::runtime_error {
 public:
  HttpError(Status status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  Status status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }

 private:
  Status status_;
  std::string code_;
};

struct Request {
  beast_http::request<beast_http::string_body> message;
  boost::asio::ip::address client_address;  // the peer of the TCP connection
  std::vector<std::pair<std::string, std::string>> params;  // from the route's {name} segments

  Method method() const { return message.method(); }
  std::string_view target() const { return message.target(); }
  // The target up to '?', and what follows it ("" when none). Not percent-decoded.
  std::string_view path() const;
  std::string_view query() const;
  // A header's value, or nullopt when absent.
  std::optional<std::string_view> header(Field field) const;
  std::optional<std::string_view> header(std::string_view name) const;
  // A route parameter; throws std::out_of_range for a name the route does not have.
  const std::string& param(std::string_view name) const;
  const std::string& body() const { return message.body(); }
  // The body parsed as JSON; throws HttpError(400, "invalid_json") with the parser's reason.
  boost::json::value json() const;
};

// A response with `status`, the request's HTTP version and keep-alive, and `body`.
Response text_response(Status status, std::string body,
                       std::string_view content_type = "text/plain; charset=utf-8");
Response json_response(Status status, const boost::json::value& body);
Response error_response(Status status, std::string_view code, std::string_view message);
// A redirect to `location` with no body.
Response redirect_response(Status status, std::string_view location);

}  // namespace keel::http
