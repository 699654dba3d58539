#include "keel/ratelimit/keyed_rate_limiter.h"

#include <algorithm>
#include <bit>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keel/core/internal/intrusive_list.h"
#include "keel/ratelimit/internal/validate.h"

namespace keel::ratelimit {
namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

std::size_t shard_count(const KeyedOptions& options) {
  if (options.max_keys == 0) throw std::invalid_argument("max_keys must be > 0, got 0");
  std::size_t shards = options.shards;
  if (shards == 0)
    shards = std::max<std::size_t>(64, std::size_t{16} * std::thread::hardware_concurrency());
  shards = std::bit_ceil(shards);
  while (shards > options.max_keys) shards /= 2;
  return shards;
}

}  // namespace

// One shard: a hash map of keys threaded on an intrusive LRU list (head = most recent).
struct alignas(64) KeyedRateLimiter::Shard {  // own cache lines: no false sharing between shards
  struct Node : keel::internal::Hook {
    explicit Node(std::unique_ptr<RateLimiter> l) : limiter(std::move(l)) {}
    std::unique_ptr<RateLimiter> limiter;
    const std::string* key = nullptr;
  };
  static Node* as_node(keel::internal::Hook* h) { return static_cast<Node*>(h); }

  std::mutex mutex;
  std::unordered_map<std::string, Node, StringHash, std::equal_to<>> nodes;  // guarded by mutex
  keel::internal::HookList order;                                            // guarded by mutex
  std::uint64_t allowed = 0, denied = 0, idle_dropped = 0, evicted = 0;      // guarded by mutex

  void remove(Node* n) {
    order.remove(n);
    nodes.erase(nodes.find(*n->key));  // the node (and the key it points to) dies here
  }
  // Drops one key other than `keep`: an idle one among the `scan` least recent, else the least
  // recent.
  void make_room(const Node* keep, std::size_t scan) {
    Node* victim = as_node(order.back());
    for (Node* n = victim; n != nullptr && scan > 0; n = as_node(n->prev), --scan) {
      if (n != keep && n->limiter->is_full()) {
        remove(n);
        ++idle_dropped;
        return;
      }
    }
    if (victim == keep) victim = as_node(victim->prev);
    if (victim == nullptr) return;
    remove(victim);
    ++evicted;
  }
};

struct KeyedRateLimiter::Impl {
  Factory factory;
  KeyedOptions options;
  std::vector<std::unique_ptr<Shard>> shards;
  std::size_t per_shard = 0;

  Shard& shard_for(std::string_view key) const {
    // The map hashes with the low bits; pick the shard with the high ones.
    const std::size_t h = StringHash{}(key);
    return *shards[(h >> 40U ^ h >> 17U) & (shards.size() - 1)];
  }
};

KeyedRateLimiter::KeyedRateLimiter(Factory factory, KeyedOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!factory) throw std::invalid_argument("KeyedRateLimiter needs a limiter factory");
  const std::size_t shards = shard_count(options);
  impl_->factory = std::move(factory);
  impl_->options = options;
  impl_->per_shard = options.max_keys / shards;
  for (std::size_t i = 0; i < shards; ++i) impl_->shards.push_back(std::make_unique<Shard>());
}

KeyedRateLimiter::KeyedRateLimiter(const Limit& limit, KeyedOptions options, const Clock& clock)
    : KeyedRateLimiter([limit, &clock](std::string_view) { return make_limiter(limit, clock); },
                       options) {
  limit.validate();
}

KeyedRateLimiter::~KeyedRateLimiter() = default;

Decision KeyedRateLimiter::try_acquire(std::string_view key, std::int64_t permits) {
  internal::require_permits(permits);
  Shard& shard = impl_->shard_for(key);
  std::lock_guard lock(shard.mutex);
  auto it = shard.nodes.find(key);
  Shard::Node* node = nullptr;
  if (it == shard.nodes.end()) {
    auto limiter = impl_->factory(key);
    if (!limiter) throw std::logic_error("KeyedRateLimiter factory returned no limiter");
    it = shard.nodes.try_emplace(std::string(key), std::move(limiter)).first;
    node = &it->second;
    node->key = &it->first;
    shard.order.push_front(node);
    if (shard.nodes.size() > impl_->per_shard) shard.make_room(node, impl_->options.idle_scan);
  } else {
    node = &it->second;
    shard.order.move_to_front(node);
  }
  const Decision decision = node->limiter->try_acquire(permits);
  ++(decision.allowed ? shard.allowed : shard.denied);
  return decision;
}

bool KeyedRateLimiter::erase(std::string_view key) {
  Shard& shard = impl_->shard_for(key);
  std::lock_guard lock(shard.mutex);
  const auto it = shard.nodes.find(key);
  if (it == shard.nodes.end()) return false;
  shard.remove(&it->second);
  return true;
}

std::size_t KeyedRateLimiter::purge_idle() {
  std::size_t purged = 0;
  for (const auto& shard : impl_->shards) {
    std::lock_guard lock(shard->mutex);
    for (Shard::Node* n = Shard::as_node(shard->order.back()); n != nullptr;) {
      Shard::Node* const prev = Shard::as_node(n->prev);
      if (n->limiter->is_full()) {
        shard->remove(n);
        ++shard->idle_dropped;
        ++purged;
      }
      n = prev;
    }
  }
  return purged;
}

std::size_t KeyedRateLimiter::size() const {
  std::size_t total = 0;
  for (const auto& shard : impl_->shards) {
    std::lock_guard lock(shard->mutex);
    total += shard->nodes.size();
  }
  return total;
}

KeyedMetrics KeyedRateLimiter::metrics() const {
  KeyedMetrics m;
  for (const auto& shard : impl_->shards) {
    std::lock_guard lock(shard->mutex);
    m.allowed += shard->allowed;
    m.denied += shard->denied;
    m.keys += shard->nodes.size();
    m.idle_dropped += shard->idle_dropped;
    m.evicted += shard->evicted;
  }
  return m;
}

Subscription KeyedRateLimiter::register_metrics(MetricsRegistry& registry,
                                                std::string_view name) const {
  const std::string limiter(name);
  auto read = [this](std::uint64_t KeyedMetrics::*field) {
    return [this, field] { return static_cast<double>(metrics().*field); };
  };
  constexpr std::string_view kDecisions = "keel_ratelimit_decisions_total";
  constexpr std::string_view kDecisionsHelp = "Rate-limit decisions by outcome";
  constexpr std::string_view kDrops = "keel_ratelimit_key_drops_total";
  constexpr std::string_view kDropsHelp =
      "Keys dropped to stay within max_keys: idle (harmless) or evicted (state lost)";
  std::vector<Subscription> parts;
  parts.push_back(registry.counter_fn(kDecisions, kDecisionsHelp,
                                      {{"limiter", limiter}, {"outcome", "allowed"}},
                                      read(&KeyedMetrics::allowed)));
  parts.push_back(registry.counter_fn(kDecisions, kDecisionsHelp,
                                      {{"limiter", limiter}, {"outcome", "denied"}},
                                      read(&KeyedMetrics::denied)));
  parts.push_back(registry.gauge_fn("keel_ratelimit_keys", "Keys held by a keyed rate limiter",
                                    {{"limiter", limiter}}, read(&KeyedMetrics::keys)));
  parts.push_back(registry.counter_fn(kDrops, kDropsHelp,
                                      {{"limiter", limiter}, {"reason", "idle"}},
                                      read(&KeyedMetrics::idle_dropped)));
  parts.push_back(registry.counter_fn(kDrops, kDropsHelp,
                                      {{"limiter", limiter}, {"reason", "evicted"}},
                                      read(&KeyedMetrics::evicted)));
  return Subscription::all(std::move(parts));
}

}  // namespace keel::ratelimit
