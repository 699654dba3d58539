// Helpers of the abuse and slow-client tests: a service binary (keel-shortener, keel-notifier)
// started on a free loopback port, and raw HTTP exchanges that a polite client would not make
// (from another loopback source address, with hand-written bytes, trickled).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/message.h"
#include "tests/support/process.h"

namespace keel::testing {

// One running service: started with `argv` plus `--listen 127.0.0.1:<free port>`, its stdout and
// stderr in `log`. Ready once GET /healthz answers 200.
struct Service {
  ChildProcess process;
  std::uint16_t port = 0;
  std::filesystem::path log;

  // Starts the binary and waits (up to 30 s) until /healthz answers; retries on another port
  // when the chosen one was taken meanwhile. Throws std::runtime_error with the log's tail when
  // the service does not come up.
  static Service start(std::vector<std::string> argv, const std::filesystem::path& log);

  // Everything the service has written so far (stdout and stderr).
  std::string log_text() const;
};

// One request over a new connection from `source` (a loopback address such as "127.0.0.2": all of
// 127.0.0.0/8 is local on Linux, so a test can be two clients) to 127.0.0.1:`port`.
http::Response exchange_from(std::string_view source, std::uint16_t port, http::Method method,
                             std::string_view target, std::string body = {},
                             const std::vector<std::pair<std::string, std::string>>& headers = {});

// A raw TCP connection to 127.0.0.1:`port` for bytes no client library would send.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Writes all of `bytes`; false when the server has closed the connection (EPIPE/ECONNRESET).
  bool send(std::string_view bytes);
  // Reads until the server closes the connection; throws std::runtime_error when it has not
  // closed it within `limit`.
  std::string read_until_closed(std::chrono::milliseconds limit);
  // True when the server has closed the connection (a read returns end of file or reset) within
  // `limit`; bytes the server sent before closing are appended to `received`.
  bool closed_within(std::chrono::milliseconds limit, std::string* received = nullptr);

 private:
  int fd_ = -1;
};

}  // namespace keel::testing
