// keel::ratelimit::Limit: an algorithm and its parameters as a value, so that one description
// builds an in-process limiter (make_limiter), a keyed limiter, or a decision in a shared Store
// such as Redis.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "keel/core/clock.h"
#include "keel/ratelimit/rate_limiter.h"

namespace keel::ratelimit {

enum class Algorithm {
  token_bucket,
  gcra,
  leaky_bucket,
  fixed_window,
  sliding_window_log,
  sliding_window_counter,
};

// "token_bucket", "gcra", ...; parse_algorithm throws std::invalid_argument on an unknown name.
std::string_view to_string(Algorithm algorithm) noexcept;
Algorithm parse_algorithm(std::string_view name);

// Build one with the named constructors; they validate like the limiters' constructors
// (std::invalid_argument naming the bad value).
struct Limit {
  Algorithm algorithm = Algorithm::token_bucket;
  double rate_per_second = 0;  // buckets and GCRA: refill / leak / emission rate
  std::int64_t amount = 0;     // capacity (buckets), burst (GCRA) or limit per window
  Duration window{};           // window algorithms only

  static Limit token_bucket(double rate_per_second, std::int64_t capacity);
  static Limit gcra(double rate_per_second, std::int64_t burst);
  static Limit leaky_bucket(double leak_rate_per_second, std::int64_t capacity);
  static Limit fixed_window(std::int64_t limit, Duration window);
  static Limit sliding_window_log(std::int64_t limit, Duration window);
  static Limit sliding_window_counter(std::int64_t limit, Duration window);

  // Throws std::invalid_argument unless the fields describe a valid limiter.
  void validate() const;
  bool operator==(const Limit&) const = default;

 private:
  Limit checked() const;
};

// A fresh, full limiter of the described algorithm.
std::unique_ptr<RateLimiter> make_limiter(const Limit& limit, const Clock& clock = default_clock());

}  // namespace keel::ratelimit
