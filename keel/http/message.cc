#include "keel/http/message.h"

#include <fmt/format.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>

namespace keel::http {

std::string_view Request::path() const {
  const std::string_view t = target();
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
  const std::string_view t = target();
  const std::size_t mark = t.find('?');
  return mark == std::string_view::npos ? std::string_view() : t.substr(mark + 1);
}

std::optional<std::string_view> Request::header(Field field) const {
  const auto it = message.find(field);
  if (it == message.end()) return std::nullopt;
  return std::string_view(it->value());
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  const auto it = message.find(name);
  if (it == message.end()) return std::nullopt;
  return std::string_view(it->value());
}

const std::string& Request::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  throw std::out_of_range(fmt::format("the route has no parameter {}", name));
}

boost::json::value Request::json() const {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(body(), error);
  if (error) {
    throw HttpError(Status::bad_request, "invalid_json",
                    fmt::format("the request body is not valid JSON: {}", error.message()));
  }
  return value;
}

Response text_response(Status status, std::string body, std::string_view content_type) {
  Response response(status, 11);
  response.set(Field::content_type, content_type);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response json_response(Status status, const boost::json::value& body) {
  return text_response(status, boost::json::serialize(body), "application/json");
}

Response error_response(Status status, std::string_view code, std::string_view message) {
  return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

Response redirect_response(Status status, std::string_view location) {
  Response response(status, 11);
  response.set(Field::location, location);
  response.prepare_payload();
  return response;
}

}  // namespace keel::http
