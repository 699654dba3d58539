// Uses keel/core through the umbrella header of an installed keel.
#include <cstdio>

#include "keel/core.h"

int main() {
  keel::ManualClock clock;
  keel::ManualScheduler scheduler(clock);
  int fired = 0;
  scheduler.schedule_after(std::chrono::seconds(1), [&] { ++fired; });
  clock.advance(std::chrono::seconds(1));
  keel::MetricsRegistry registry;
  registry.counter("consumer_runs_total", "Runs").inc();
  const bool ok = fired == 1 && keel::base62_decode(keel::base62_encode(12345)) == 12345 &&
                  keel::sha256_hex("").size() == 64 && !registry.render().empty();
  std::puts(ok ? "keel package works" : "keel package BROKEN");
  return ok ? 0 : 1;
}
