#include "keel/core/internal/log.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace keel::internal {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("keel")) return existing;  // the application made its own
    auto created = spdlog::stderr_color_mt("keel");
    created->set_level(spdlog::level::warn);
    return created;
  }();
  return *instance;
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace keel::internal
