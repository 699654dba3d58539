#include "case_studies/url_shortener/shortener.h"

#include <fmt/format.h>

#include <boost/url/parse.hpp>

#include "keel/core/encoding.h"

namespace keel::shortener {

namespace {

std::string host_of(const std::string& base_url) {
  const auto parsed = boost::urls::parse_uri(base_url);
  if (!parsed || parsed->encoded_host().empty()) {
    throw std::invalid_argument(
        fmt::format("Shortener: the base URL {} is not an absolute URL with a host",
                    quote_for_message(base_url)));
  }
  return std::string(parsed->encoded_host());
}

}  // namespace

// A cache shared with other servers, whose fills of live links are checked against the store
// once written (see ShortenerOptions::cache). A delete commits in the store before its
// invalidation reaches the cache; so a fill written after that invalidation is read back after
// the delete committed, and the tombstone replaces it.
class Shortener::CheckedFills final : public cache::Cache<std::string, Link> {
 public:
  CheckedFills(cache::Cache<std::string, Link>& shared, LinkStore& store)
      : shared_(shared), store_(store) {}

  std::optional<Link> get(const std::string& code) override { return shared_.get(code); }
  void put(const std::string& code, Link link, std::optional<Duration> ttl) override {
    const bool live = !link.deleted;
    shared_.put(code, std::move(link), ttl);
    if (!live) return;  // a tombstone is final
    try {
      if (std::optional<Link> now = store_.find(code); !now || now->deleted) {
        if (now) {
          shared_.put(code, std::move(*now), ttl);
        } else {
          shared_.erase(code);
        }
      }
    } catch (...) {
      shared_.erase(code);  // not confirmed: not kept
      throw;
    }
  }
  bool erase(const std::string& code) override { return shared_.erase(code); }
  std::size_t size() const override { return shared_.size(); }
  std::size_t capacity() const override { return shared_.capacity(); }
  void clear() override { shared_.clear(); }
  cache::CacheStats stats() const override { return shared_.stats(); }

 private:
  cache::Cache<std::string, Link>& shared_;
  LinkStore& store_;
};

Shortener::Shortener(LinkStore& store, ShortenerOptions options)
    : store_(store),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : default_clock()),
      counters_(options_.counter_source != nullptr ? *options_.counter_source : store),
      codes_(options_.code_key),
      policy_{.own_hosts = {host_of(options_.base_url)}},
      cache_(options_.cache != nullptr
                 ? std::unique_ptr<cache::Cache<std::string, Link>>(
                       std::make_unique<CheckedFills>(*options_.cache, store))
                 : std::make_unique<cache::LruCache<std::string, Link>>(
                       options_.cache_capacity,
                       cache::CacheOptions{.default_ttl = options_.cache_ttl}, clock_)),
      links_(*cache_, [this](const std::string& code) { return store_.find(code); },
             {.negative_ttl = options_.negative_ttl}, clock_) {
  if (options_.counter_block == 0) {
    throw std::invalid_argument("Shortener: counter_block must be positive");
  }
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
}

std::uint64_t Shortener::next_counter() {
  const std::lock_guard lock(counter_mutex_);
  if (next_ == end_) {
    next_ = counters_.reserve_counter(options_.counter_block);
    end_ = next_ + options_.counter_block;
  }
  return next_++;
}

std::string Shortener::short_url(std::string_view code) const {
  return fmt::format("{}/{}", options_.base_url, code);
}

CreateResult Shortener::create(const CreateRequest& request) {
  std::string url;
  try {
    url = normalize_url(request.url, policy_);
  } catch (const InvalidUrl& e) {
    throw ShortenerError("invalid_url", e.what());
  }
  const WallTime now = clock_.wall_now();
  if (request.expires_at && *request.expires_at <= now) {
    throw ShortenerError("invalid_expiry", "expires_at is in the past");
  }
  Link link{.code = {},
            .url = url,
            .created_at = now,
            .expires_at = request.expires_at,
            .custom_alias = request.alias.has_value()};
  if (request.alias) {
    try {
      validate_alias(*request.alias);
    } catch (const InvalidAlias& e) {
      throw ShortenerError("invalid_alias", e.what());
    }
    link.code = *request.alias;
    if (!store_.insert(link)) {
      throw ShortenerError("alias_taken",
                           fmt::format("the alias {} is taken", quote_for_message(link.code)));
    }
    links_.invalidate(link.code);  // a cached "not found" for it
    return {std::move(link), true};
  }
  if (link.plain()) {
    if (std::optional<Link> existing = store_.find_plain(url)) return {std::move(*existing), false};
  }
  for (;;) {
    link.code = codes_.code(next_counter());
    std::optional<Link> existing;
    if (store_.insert(link, &existing)) break;
    if (existing) return {std::move(*existing), false};  // another request won the dedup race
    // The code was taken by an alias that happens to look like a code: take the next one.
  }
  links_.invalidate(link.code);
  return {std::move(link), true};
}

std::optional<Link> Shortener::find(std::string_view code) {
  return links_.get(std::string(code));
}

Resolution Shortener::resolve(std::string_view code) {
  const std::optional<Link> link = find(code);
  if (!link) return {};
  if (link->deleted || (link->expires_at && *link->expires_at <= clock_.wall_now())) {
    return {.state = Resolution::State::gone, .url = {}};
  }
  return {.state = Resolution::State::found, .url = link->url};
}

bool Shortener::remove(std::string_view code) {
  const bool removed = store_.remove(code, clock_.wall_now());
  links_.invalidate(std::string(code));
  return removed;
}

}  // namespace keel::shortener
