#include "keel/ratelimit/rate_limiter.h"

#include <string>
#include <vector>

namespace keel::ratelimit {

Subscription RateLimiter::register_metrics(MetricsRegistry& registry, std::string_view name) const {
  constexpr std::string_view kName = "keel_ratelimit_decisions_total";
  constexpr std::string_view kHelp = "Rate-limit decisions by outcome";
  const std::string limiter(name);
  std::vector<Subscription> parts;
  parts.push_back(registry.counter_fn(kName, kHelp, {{"limiter", limiter}, {"outcome", "allowed"}},
                                      [this] { return static_cast<double>(metrics().allowed); }));
  parts.push_back(registry.counter_fn(kName, kHelp, {{"limiter", limiter}, {"outcome", "denied"}},
                                      [this] { return static_cast<double>(metrics().denied); }));
  return Subscription::all(std::move(parts));
}

}  // namespace keel::ratelimit
