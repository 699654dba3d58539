#include "keel/ratelimit/internal/validate.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace keel::ratelimit::internal {

void require_positive(std::int64_t value, const char* name) {
  if (value <= 0) throw std::invalid_argument(fmt::format("{} must be > 0, got {}", name, value));
}

void require_positive(Duration value, const char* name) {
  if (value <= Duration::zero()) {
    throw std::invalid_argument(fmt::format("{} must be > 0, got {}", name, value));
  }
}

void require_positive_rate(double value, const char* name) {
  if (!std::isfinite(value) || value <= 0) {
    throw std::invalid_argument(fmt::format("{} must be a finite number > 0, got {}", name, value));
  }
}

void require_permits(std::int64_t permits) { require_positive(permits, "permits"); }

}  // namespace keel::ratelimit::internal
