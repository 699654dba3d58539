#include "case_studies/notification_system/channels/http_provider.h"

#include <fmt/format.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "case_studies/notification_system/channels/internal/http_post.h"

namespace keel::notifier {

HttpProvider::HttpProvider(HttpProviderOptions options, const Clock& clock)
    : options_(std::move(options)), guard_(options_.allowed_private_hosts), clock_(clock) {
  internal::ensure_curl_initialized();
  std::string error;
  if (!internal::parse_http_url(options_.url, error)) {
    throw std::invalid_argument(fmt::format("HttpProviderOptions.url: {}", error));
  }
  internal::require_transport_options("HttpProviderOptions", options_.connect_timeout,
                                      options_.timeout, options_.name);
  // The token goes into a header: a CR or LF would inject headers. Never shown in the message.
  for (const char c : options_.bearer_token) {
    if (const auto u = static_cast<unsigned char>(c); u <= 0x20 || u >= 0x7F) {
      throw std::invalid_argument(
          "HttpProviderOptions.bearer_token: only printable ASCII without spaces is allowed");
    }
  }
}

std::string HttpProvider::request_body(const Message& m) {
  boost::json::object body{{"channel", to_string(m.channel)}, {"to", contact_for(m.to, m.channel)}};
  for (const auto& field : internal::message_fields(m)) body.emplace(field.key(), field.value());
  return boost::json::serialize(body);
}

SendResult HttpProvider::send(const Message& message) {
  if (contact_for(message.to, message.channel).empty()) {
    return {
        .outcome = SendOutcome::permanent,
        .error = fmt::format("user {} has no {}", message.user_id, contact_name(message.channel))};
  }
  internal::JsonPost post{.url = options_.url,
                          .body = request_body(message),
                          .connect_timeout = options_.connect_timeout,
                          .timeout = options_.timeout};
  if (auto key = internal::idempotency_header(message)) post.headers.push_back(std::move(*key));
  if (!options_.bearer_token.empty()) {
    post.headers.push_back(fmt::format("Authorization: Bearer {}", options_.bearer_token));
  }
  SendResult result = internal::post_json(post, guard_, clock_);
  // A gateway that echoes the request in an error body must not put the token in our logs.
  if (!options_.bearer_token.empty()) {
    for (std::size_t at = result.error.find(options_.bearer_token); at != std::string::npos;
         at = result.error.find(options_.bearer_token, at)) {
      result.error.replace(at, options_.bearer_token.size(), "[redacted]");
    }
  }
  return result;
}

}  // namespace keel::notifier
