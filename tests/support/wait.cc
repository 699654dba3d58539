#include "tests/support/wait.h"

#include <algorithm>
#include <thread>

namespace keel::testing {

bool wait_until(const std::function<bool()>& probe, Duration timeout, Duration poll) {
  // Real time on purpose: what we wait for is another process, which no test clock can move.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (probe()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<Duration>(poll, deadline - now));
  }
}

}  // namespace keel::testing
