#include "keel/http/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <optional>

namespace keel::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct Client::Impl {
  std::string host;
  std::uint16_t port;
  Duration timeout;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  void connect() {
    stream.emplace(ioc);
    buffer.clear();
    stream->expires_after(timeout);
    tcp::resolver resolver(ioc);
    stream->connect(resolver.resolve(host, std::to_string(port)));
  }

  Response exchange(const beast_http::request<beast_http::string_body>& request) {
    stream->expires_after(timeout);
    beast_http::write(*stream, request);
    beast_http::response_parser<beast_http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (request.method() == Method::head) parser.skip(true);
    beast_http::read(*stream, buffer, parser);
    Response response = parser.release();
    if (!response.keep_alive()) stream.reset();
    return response;
  }
};

Client::Client(std::string host, std::uint16_t port, Duration timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

Client::~Client() = default;

void Client::close() { impl_->stream.reset(); }

Response Client::request(Method method, std::string_view target, std::string body,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  beast_http::request<beast_http::string_body> request(method, target, 11);
  request.set(Field::host, impl_->host);
  request.set(Field::user_agent, "keel-http-client");
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  request.prepare_payload();
  request.keep_alive(true);
  const bool reused = impl_->stream.has_value();
  if (!reused) impl_->connect();
  try {
    return impl_->exchange(request);
  } catch (const boost::system::system_error& e) {
    impl_->stream.reset();
    // Retry once, on a new connection, only when a kept-alive connection turned out to be
    // closed by the server (idle timeout) before it answered anything: then the request was
    // not processed. A timeout or any other error is the caller's to handle — the server may
    // have run the request.
    const auto code = e.code();
    const bool closed_before_answer = code == beast_http::error::end_of_stream ||
                                      code == boost::asio::error::connection_reset ||
                                      code == boost::asio::error::broken_pipe ||
                                      code == boost::asio::error::eof;
    if (!reused || !closed_before_answer) throw;
    impl_->connect();
    return impl_->exchange(request);
  }
}

}  // namespace keel::http
