// Test fixtures for the channels' integration tests: an HTTP sink (a keel::http::Server on
// 127.0.0.1 that records every request and answers what it is told to) and a TCP port that
// accepts connections but never speaks (for timeouts).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "keel/http/server.h"

namespace keel::notifier::testing {

struct RecordedRequest {
  std::string target = {};
  std::map<std::string, std::string> headers = {};  // lower-case names
  std::string body = {};
};

struct CannedResponse {
  int status = 200;
  std::map<std::string, std::string> headers = {};
  std::string body = R"({"id":"gw-123"})";
  std::chrono::milliseconds delay = std::chrono::milliseconds(0);
};

// Answers POST /{path} with the queued responses in order, then 200 {"id":"gw-123"}.
class HttpSink {
 public:
  HttpSink() : server_(make_router(), {.host = "127.0.0.1", .threads = 2}) { server_.start(); }
  ~HttpSink() { server_.stop(std::chrono::seconds(5)); }

  std::uint16_t port() const { return server_.port(); }
  std::string url(std::string_view path) const {
    return std::string("http://127.0.0.1:").append(std::to_string(port())).append(path);
  }
  void answer(CannedResponse response) {
    std::lock_guard lock(state_->mutex);
    state_->queue.push_back(std::move(response));
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(state_->mutex);
    return state_->requests;
  }

 private:
  struct State {
    mutable std::mutex mutex;
    std::deque<CannedResponse> queue;
    std::vector<RecordedRequest> requests;
  };

  http::Router make_router() {
    http::Router router;
    router.add(http::Method::post, "/{path}", [state = state_](http::Request& request) {
      CannedResponse canned;
      {
        std::lock_guard lock(state->mutex);
        RecordedRequest recorded{
            .target = std::string(request.target()), .headers = {}, .body = request.body()};
        for (const auto& field : request.message) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          recorded.headers[name] = std::string(field.value());
        }
        state->requests.push_back(std::move(recorded));
        if (!state->queue.empty()) {
          canned = std::move(state->queue.front());
          state->queue.pop_front();
        }
      }
      if (canned.delay.count() > 0) std::this_thread::sleep_for(canned.delay);
      http::Response response = http::text_response(static_cast<http::Status>(canned.status),
                                                    canned.body, "application/json");
      for (const auto& [name, value] : canned.headers) response.set(name, value);
      return response;
    });
    return router;
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
  http::Server server_;
};

// A loopback port whose connections are accepted by the kernel (backlog) and never answered.
class SilentPort {
 public:
  SilentPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::system_error(errno, std::generic_category(), "SilentPort");
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  SilentPort(const SilentPort&) = delete;
  SilentPort& operator=(const SilentPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace keel::notifier::testing
