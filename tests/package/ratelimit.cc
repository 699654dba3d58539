// Uses keel::ratelimit alone, as the README shows it.
#include <cstdio>

#include "keel/ratelimit.h"

using keel::ratelimit::TokenBucket;

int main() {
  keel::ManualClock clock;
  TokenBucket limiter(10, 50, clock);
  int processed = 0, rejected = 0;
  for (int i = 0; i < 60; ++i) {
    if (limiter.allow())
      ++processed;
    else
      ++rejected;
  }
  const bool ok = processed == 50 && rejected == 10;
  std::puts(ok ? "keel package works" : "keel package BROKEN");
  return ok ? 0 : 1;
}
