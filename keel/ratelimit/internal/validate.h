// Argument checks shared by the limiters: each throws std::invalid_argument naming the value.
#pragma once

#include <cstdint>

#include "keel/core/clock.h"

namespace keel::ratelimit::internal {

void require_positive(std::int64_t value, const char* name);
void require_positive(Duration value, const char* name);
void require_positive_rate(double value, const char* name);
// A request of `permits` must ask for at least one.
void require_permits(std::int64_t permits);

}  // namespace keel::ratelimit::internal
