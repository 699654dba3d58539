#include "keel/ratelimit/limit.h"

#include <fmt/format.h>

#include <array>
#include <stdexcept>
#include <utility>

#include "keel/ratelimit/fixed_window.h"
#include "keel/ratelimit/gcra.h"
#include "keel/ratelimit/internal/atomic_bucket.h"
#include "keel/ratelimit/internal/validate.h"
#include "keel/ratelimit/leaky_bucket.h"
#include "keel/ratelimit/sliding_window_counter.h"
#include "keel/ratelimit/sliding_window_log.h"
#include "keel/ratelimit/token_bucket.h"

namespace keel::ratelimit {
namespace {

constexpr std::array<std::pair<Algorithm, std::string_view>, 6> kNames = {{
    {Algorithm::token_bucket, "token_bucket"},
    {Algorithm::gcra, "gcra"},
    {Algorithm::leaky_bucket, "leaky_bucket"},
    {Algorithm::fixed_window, "fixed_window"},
    {Algorithm::sliding_window_log, "sliding_window_log"},
    {Algorithm::sliding_window_counter, "sliding_window_counter"},
}};

bool is_bucket(Algorithm a) {
  return a == Algorithm::token_bucket || a == Algorithm::gcra || a == Algorithm::leaky_bucket;
}

}  // namespace

std::string_view to_string(Algorithm algorithm) noexcept {
  for (const auto& [a, name] : kNames) {
    if (a == algorithm) return name;
  }
  return "unknown";
}

Algorithm parse_algorithm(std::string_view name) {
  for (const auto& [a, n] : kNames) {
    if (n == name) return a;
  }
  throw std::invalid_argument(
      fmt::format("unknown rate-limit algorithm '{}' (expected token_bucket, gcra, leaky_bucket, "
                  "fixed_window, sliding_window_log or sliding_window_counter)",
                  name));
}

Limit Limit::token_bucket(double rate_per_second, std::int64_t capacity) {
  return Limit{Algorithm::token_bucket, rate_per_second, capacity, {}}.checked();
}
Limit Limit::gcra(double rate_per_second, std::int64_t burst) {
  return Limit{Algorithm::gcra, rate_per_second, burst, {}}.checked();
}
Limit Limit::leaky_bucket(double leak_rate_per_second, std::int64_t capacity) {
  return Limit{Algorithm::leaky_bucket, leak_rate_per_second, capacity, {}}.checked();
}
Limit Limit::fixed_window(std::int64_t limit, Duration window) {
  return Limit{Algorithm::fixed_window, 0, limit, window}.checked();
}
Limit Limit::sliding_window_log(std::int64_t limit, Duration window) {
  return Limit{Algorithm::sliding_window_log, 0, limit, window}.checked();
}
Limit Limit::sliding_window_counter(std::int64_t limit, Duration window) {
  return Limit{Algorithm::sliding_window_counter, 0, limit, window}.checked();
}

Limit Limit::checked() const {
  validate();
  return *this;
}

void Limit::validate() const {
  if (to_string(algorithm) == "unknown") {
    throw std::invalid_argument(
        fmt::format("unknown rate-limit algorithm {}", static_cast<int>(algorithm)));
  }
  if (is_bucket(algorithm)) {
    const char* amount_name = algorithm == Algorithm::gcra ? "burst" : "capacity";
    internal::make_bucket_params(rate_per_second, amount, "rate_per_second", amount_name);
  } else {
    internal::require_positive(amount, "limit");
    internal::require_positive(window, "window");
  }
}

std::unique_ptr<RateLimiter> make_limiter(const Limit& limit, const Clock& clock) {
  limit.validate();
  switch (limit.algorithm) {
    case Algorithm::token_bucket:
      return std::make_unique<TokenBucket>(limit.rate_per_second, limit.amount, clock);
    case Algorithm::gcra:
      return std::make_unique<Gcra>(limit.rate_per_second, limit.amount, clock);
    case Algorithm::leaky_bucket:
      return std::make_unique<LeakyBucket>(limit.rate_per_second, limit.amount, clock);
    case Algorithm::fixed_window:
      return std::make_unique<FixedWindow>(limit.amount, limit.window, clock);
    case Algorithm::sliding_window_log:
      return std::make_unique<SlidingWindowLog>(limit.amount, limit.window, clock);
    case Algorithm::sliding_window_counter:
      return std::make_unique<SlidingWindowCounter>(limit.amount, limit.window, clock);
  }
  throw std::invalid_argument("unknown rate-limit algorithm");
}

}  // namespace keel::ratelimit
