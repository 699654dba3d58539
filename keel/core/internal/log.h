// The "keel" spdlog logger used inside the library. Quiet by default: it reports warnings and
// errors (a task that threw, a listener that failed) to stderr. Applications adjust it through
// spdlog: spdlog::get("keel")->set_level(spdlog::level::off).
#pragma once

#include <spdlog/spdlog.h>

#include <exception>
#include <string>

namespace keel::internal {

spdlog::logger& logger();

// What an exception says, for a log line: its what(), or "a non-standard exception".
std::string describe(const std::exception_ptr& error);

}  // namespace keel::internal
