// Window arithmetic shared by the window algorithms: windows are aligned to multiples of the
// window length on the clock's own timeline (time_since_epoch).
#pragma once

#include <cstdint>

#include "keel/core/clock.h"

namespace keel::ratelimit::internal {

struct WindowPosition {
  std::int64_t index;  // floor(now / window)
  Duration elapsed;    // now - index * window, in [0, window)
};

inline WindowPosition window_position(TimePoint now, Duration window) {
  const std::int64_t t = now.time_since_epoch().count();
  const std::int64_t w = window.count();
  std::int64_t index = t / w;
  if (t % w < 0) --index;  // floor, also before the epoch
  return {index, Duration(t - index * w)};
}

}  // namespace keel::ratelimit::internal
