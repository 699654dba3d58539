#include "keel/ratelimit/store.h"

#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {

// One KeyedRateLimiter per distinct Limit; services use a handful of limits, so a short list.
struct MemoryStore::Impl {
  KeyedOptions options;
  const Clock& clock;
  mutable std::shared_mutex mutex;
  std::vector<std::pair<Limit, std::unique_ptr<KeyedRateLimiter>>> limiters;  // guarded by mutex

  KeyedRateLimiter* find(const Limit& limit) const {
    for (const auto& [l, keyed] : limiters) {
      if (l == limit) return keyed.get();
    }
    return nullptr;
  }
  KeyedRateLimiter& limiter_for(const Limit& limit) {
    {
      std::shared_lock lock(mutex);
      if (auto* keyed = find(limit)) return *keyed;
    }
    std::unique_lock lock(mutex);
    if (auto* keyed = find(limit)) return *keyed;
    limiters.emplace_back(limit, std::make_unique<KeyedRateLimiter>(limit, options, clock));
    return *limiters.back().second;
  }
};

MemoryStore::MemoryStore(KeyedOptions options, const Clock& clock)
    : impl_(new Impl{options, clock, {}, {}}) {
  KeyedRateLimiter probe([](std::string_view) { return std::unique_ptr<RateLimiter>(); },
                         options);  // validates the options
}

MemoryStore::~MemoryStore() = default;

Decision MemoryStore::try_acquire(std::string_view key, const Limit& limit, std::int64_t permits) {
  limit.validate();
  internal::require_permits(permits);
  if (key.empty()) throw std::invalid_argument("rate-limit key must not be empty");
  return impl_->limiter_for(limit).try_acquire(key, permits);
}

std::size_t MemoryStore::size() const {
  std::shared_lock lock(impl_->mutex);
  std::size_t total = 0;
  for (const auto& [limit, keyed] : impl_->limiters) total += keyed->size();
  return total;
}

StoreRateLimiter::StoreRateLimiter(Store& store, std::string key, Limit limit)
    : store_(store), key_(std::move(key)), limit_(limit) {
  limit_.validate();
  if (key_.empty()) throw std::invalid_argument("rate-limit key must not be empty");
}

Decision StoreRateLimiter::try_acquire(std::int64_t permits) {
  return record(store_.try_acquire(key_, limit_, permits));
}

}  // namespace keel::ratelimit
