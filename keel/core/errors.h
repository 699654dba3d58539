// keel's error types shared by every component.
//
// Invalid arguments and configuration throw std::invalid_argument naming the bad value; expected
// outcomes (a denied request, a cache miss) are values. An engine that fails (Redis unreachable,
// a PostgreSQL error, NATS timeout) surfaces as BackendError carrying the engine's own message.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace keel {

class BackendError : public std::runtime_error {
 public:
  // `backend` names the engine ("redis", "postgres", "sqlite", "nats").
  BackendError(std::string backend, const std::string& message)
      : std::runtime_error(backend + ": " + message), backend_(std::move(backend)) {}
  const std::string& backend() const noexcept { return backend_; }

 private:
  std::string backend_;
};

}  // namespace keel
