// keel::http::Client: a small blocking HTTP/1.1 client over one keep-alive connection, for
// tests, demos and tools that talk to keel services (production callers usually have their own
// client; this one exists so that keel's tests and demos go over real HTTP).
//
//   http::Client client("127.0.0.1", server.port());
//   Response r = client.request(Method::post, "/api/v1/links", R"({"url":"https://example.com"})",
//                               {{"Content-Type", "application/json"}});
//
// The connection opens on first use and again when the server closed it (one retry). Responses
// to HEAD have no body. Throws boost::system::system_error on network errors and timeouts.
//
// Thread safety: one thread at a time (one Client per thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/core/clock.h"
#include "keel/http/message.h"

namespace keel::http {

class Client {
 public:
  Client(std::string host, std::uint16_t port, Duration timeout = std::chrono::seconds(10));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Response request(Method method, std::string_view target, std::string body = {},
                   const std::vector<std::pair<std::string, std::string>>& headers = {});
  Response get(std::string_view target) { return request(Method::get, target); }

  // Closes the connection (the next request opens a new one).
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::http
