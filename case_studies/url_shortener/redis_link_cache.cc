#include "case_studies/url_shortener/redis_link_cache.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <stdexcept>
#include <utility>

#include "keel/cache/lru_cache.h"
#include "keel/redis/redis_cache.h"
#include "keel/redis/two_tier_cache.h"

namespace keel::shortener {

namespace {

std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
WallTime from_ms(std::int64_t ms) {
  return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})};
}

using L2 = redis::RedisCache<std::string, Link, redis::DefaultCodec<std::string>, LinkCodec>;
using TwoTier = redis::TwoTierCache<std::string, Link, redis::DefaultCodec<std::string>, LinkCodec>;

redis::RedisCacheOptions l2_options(const RedisLinkCacheOptions& options) {
  if (options.ttl <= Duration::zero())
    throw std::invalid_argument("RedisLinkCache: ttl must be > 0");
  if (options.local_ttl <= Duration::zero()) {
    throw std::invalid_argument("RedisLinkCache: local_ttl must be > 0");
  }
  return {.connection = options.connection,
          .key_prefix = options.key_prefix,
          .default_ttl = options.ttl};
}

}  // namespace

std::string LinkCodec::encode(const Link& link) {
  boost::json::object object{{"code", link.code},
                             {"url", link.url},
                             {"created_ms", to_ms(link.created_at)},
                             {"custom", link.custom_alias},
                             {"deleted", link.deleted}};
  if (link.expires_at) object["expires_ms"] = to_ms(*link.expires_at);
  return boost::json::serialize(object);
}

Link LinkCodec::decode(std::string_view bytes) {
  const boost::json::object object = boost::json::parse(bytes).as_object();
  Link link;
  link.code = std::string(object.at("code").as_string());
  link.url = std::string(object.at("url").as_string());
  link.created_at = from_ms(object.at("created_ms").as_int64());
  if (const auto* expires = object.if_contains("expires_ms")) {
    link.expires_at = from_ms(expires->as_int64());
  }
  link.custom_alias = object.at("custom").as_bool();
  link.deleted = object.at("deleted").as_bool();
  return link;
}

struct RedisLinkCache::Impl {
  Impl(const RedisLinkCacheOptions& options, const Clock& clock) : l2(l2_options(options), clock) {
    if (options.local_capacity > 0) {
      l1 = std::make_unique<cache::LruCache<std::string, Link>>(
          options.local_capacity, cache::CacheOptions{.default_ttl = options.local_ttl}, clock);
      two_tier = std::make_unique<TwoTier>(*l1, l2, redis::TwoTierCacheOptions{}, clock);
    }
  }

  cache::Cache<std::string, Link>& front() {
    if (two_tier) return *two_tier;
    return l2;
  }
  const cache::Cache<std::string, Link>& front() const {
    if (two_tier) return *two_tier;
    return l2;
  }

  L2 l2;
  std::unique_ptr<cache::LruCache<std::string, Link>> l1;
  std::unique_ptr<TwoTier> two_tier;  // after l1 and l2: it goes first
};

RedisLinkCache::RedisLinkCache(RedisLinkCacheOptions options, const Clock& clock)
    : impl_(std::make_unique<Impl>(options, clock)) {}

RedisLinkCache::~RedisLinkCache() = default;

std::optional<Link> RedisLinkCache::get(const std::string& code) {
  return impl_->front().get(code);
}

void RedisLinkCache::put(const std::string& code, Link link, std::optional<Duration> ttl) {
  impl_->front().put(code, std::move(link), ttl);
}

bool RedisLinkCache::erase(const std::string& code) { return impl_->front().erase(code); }

std::size_t RedisLinkCache::size() const { return impl_->l1 ? impl_->l1->size() : 0; }

std::size_t RedisLinkCache::capacity() const { return impl_->l1 ? impl_->l1->capacity() : 0; }

void RedisLinkCache::clear() { impl_->front().clear(); }

cache::CacheStats RedisLinkCache::stats() const { return impl_->front().stats(); }

RedisLinkCacheMetrics RedisLinkCache::metrics() const {
  RedisLinkCacheMetrics metrics{.redis_errors = impl_->l2.metrics().errors()};
  if (impl_->two_tier) {
    const redis::TwoTierCacheMetrics tiers = impl_->two_tier->metrics();
    metrics.l1_hits = tiers.l1_hits;
    metrics.redis_hits = tiers.l2_hits;
    metrics.misses = tiers.misses;
    metrics.invalidations_received = tiers.invalidations_received;
  } else {
    const cache::CacheStats redis = impl_->l2.stats();
    metrics.redis_hits = redis.hits;
    metrics.misses = redis.misses;
  }
  return metrics;
}

bool RedisLinkCache::l1_active() const noexcept {
  return impl_->two_tier && impl_->two_tier->subscribed();
}

}  // namespace keel::shortener
