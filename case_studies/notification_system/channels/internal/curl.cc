#include "case_studies/notification_system/channels/internal/curl.h"

#include <fmt/format.h>

#include <mutex>
#include <stdexcept>

namespace keel::notifier::internal {

void ensure_curl_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

long to_millis(Duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

void require_transport_options(std::string_view options_type, Duration connect_timeout,
                               Duration timeout, std::string_view name) {
  if (connect_timeout <= Duration::zero() || timeout <= Duration::zero()) {
    throw std::invalid_argument(fmt::format("{}: timeouts must be positive", options_type));
  }
  if (name.empty())
    throw std::invalid_argument(fmt::format("{}.name: must not be empty", options_type));
}

}  // namespace keel::notifier::internal
