// The "keel" spdlog logger used inside the library. Quiet by default: it reports warnings and
// errors (a task that threw, a listener that failed) to stderr. Applications adjust it through
// spdlog: spdlog::get("keel")->set_level(spdlog::level::off).
#pragma once

#include <spdlog/spdlog.h>

namespace keel::internal {

spdlog::logger& logger();

}  // namespace keel::internal
