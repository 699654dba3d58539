// Uses keel::saga from an installed keel: its public headers include Boost.JSON (the Context),
// so keelConfig.cmake must find Boost.JSON for the user without being told.
#include <cstdio>

#include "keel/saga.h"

int main() {
  using namespace keel::saga;
  Saga order("order", {{"reserve", [](Context& c) { c["reserved"] = true; }, no_op},
                       {"charge", [](Context&) {}, no_op}});
  const SagaResult result = order.execute({{"amount", 49.99}});
  const bool ok = result.status == SagaStatus::completed && result.context.at("reserved").as_bool();
  std::puts(ok ? "keel package works" : "keel package BROKEN");
  return ok ? 0 : 1;
}
