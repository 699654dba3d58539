#include "keel/cache/internal/sharded_cache.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace keel::cache::internal {

void require_capacity(std::size_t capacity) {
  if (capacity == 0) throw std::invalid_argument("cache capacity must be > 0, got 0");
}

void require_ttl(const std::optional<Duration>& ttl, const char* name) {
  if (ttl && *ttl <= Duration::zero()) {
    throw std::invalid_argument(fmt::format("cache {} must be > 0, got {}", name, *ttl));
  }
}

std::size_t shard_count(std::size_t capacity, std::size_t requested) {
  constexpr std::size_t kMinPerShard = 64;
  std::size_t n = requested;
  if (n == 0) {
    n = std::bit_ceil(std::size_t{4} * std::max(1U, std::thread::hardware_concurrency()));
    while (n > 1 && capacity / n < kMinPerShard) n /= 2;
  } else {
    n = std::bit_ceil(n);
    while (n > capacity) n /= 2;
  }
  return n;
}

}  // namespace keel::cache::internal
