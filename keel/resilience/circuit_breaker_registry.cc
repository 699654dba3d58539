#include "keel/resilience/circuit_breaker_registry.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

namespace keel::resilience {

struct CircuitBreakerRegistry::Impl {
  Impl(CircuitBreakerConfig d, const Clock& c) : defaults(std::move(d)), clock(c) {}
  CircuitBreakerConfig defaults;
  const Clock& clock;
  mutable std::mutex mutex;
  std::map<std::string, std::unique_ptr<CircuitBreaker>, std::less<>> breakers;  // guarded
  // Metrics registries to export to, each with the series of every breaker so far.
  struct Export {
    MetricsRegistry* registry;
    std::vector<Subscription> series;
  };
  std::map<std::uint64_t, Export> exports;  // guarded
  std::uint64_t next_export = 0;
};

CircuitBreakerRegistry::CircuitBreakerRegistry(CircuitBreakerConfig defaults, const Clock& clock)
    : impl_(std::make_shared<Impl>(std::move(defaults), clock)) {
  impl_->defaults.validate();
}

CircuitBreakerRegistry::~CircuitBreakerRegistry() {
  std::lock_guard lock(impl_->mutex);
  impl_->exports.clear();  // series first: they read the breakers
}

CircuitBreaker& CircuitBreakerRegistry::breaker(std::string_view name) {
  return breaker(name, impl_->defaults);
}

CircuitBreaker& CircuitBreakerRegistry::breaker(std::string_view name,
                                                CircuitBreakerConfig config) {
  std::lock_guard lock(impl_->mutex);
  if (auto it = impl_->breakers.find(name); it != impl_->breakers.end()) return *it->second;
  config.name = std::string(name);
  auto created = std::make_unique<CircuitBreaker>(std::move(config), impl_->clock);
  for (auto& [id, out] : impl_->exports)
    out.series.push_back(created->register_metrics(*out.registry));
  return *impl_->breakers.emplace(std::string(name), std::move(created)).first->second;
}

CircuitBreaker* CircuitBreakerRegistry::find(std::string_view name) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->breakers.find(name);
  return it == impl_->breakers.end() ? nullptr : it->second.get();
}

std::vector<std::string> CircuitBreakerRegistry::names() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> names;
  for (const auto& [name, b] : impl_->breakers) names.push_back(name);
  return names;
}

Subscription CircuitBreakerRegistry::register_metrics(MetricsRegistry& registry) {
  std::lock_guard lock(impl_->mutex);
  const std::uint64_t id = impl_->next_export++;
  Impl::Export& out = impl_->exports[id];
  out.registry = &registry;
  for (const auto& [name, b] : impl_->breakers) out.series.push_back(b->register_metrics(registry));
  return Subscription([weak = std::weak_ptr<Impl>(impl_), id] {
    if (auto impl = weak.lock()) {
      Impl::Export removed;
      {
        std::lock_guard guard(impl->mutex);
        const auto it = impl->exports.find(id);
        if (it == impl->exports.end()) return;
        removed = std::move(it->second);
        impl->exports.erase(it);
      }
      // `removed` ends its series here, outside the registry's lock.
    }
  });
}

}  // namespace keel::resilience
