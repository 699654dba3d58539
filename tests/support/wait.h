// wait_until(): polls a condition in real time, for fixtures that wait on real processes
// (a server accepting connections). Unit tests of library code use ManualClock instead.
// Thread safety: reentrant; the probe runs on the calling thread.
#pragma once

#include <chrono>
#include <functional>

namespace keel::testing {

// The same type as keel::Duration; spelled here so the fixtures do not depend on keel::core.
using Duration = std::chrono::nanoseconds;

// Calls `probe` until it returns true or `timeout` has passed, sleeping `poll` between calls.
// The probe is called at least once. Returns the probe's last answer.
bool wait_until(const std::function<bool()>& probe, Duration timeout,
                Duration poll = std::chrono::milliseconds(50));

}  // namespace keel::testing
