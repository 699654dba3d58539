// The shortener's storage port and its SQLite implementation (the embedded default).
//
// A link maps a code to its normalised target. Plain links (no alias, no expiry) are the ones
// dedup applies to: the store keeps at most one plain link per MD5 of the URL (a unique index),
// so two servers that shorten the same URL at the same moment end with one code. An MD5 match is
// always confirmed against the stored URL, and in the astronomically unlikely case that two
// different URLs share an MD5, the second is stored without dedup rather than ever redirecting
// to the wrong target.
//
// Deleted links stay as tombstones: their code answers 410 and is never handed out again.
//
// Counter blocks: each server reserves `count` counter values at a time (reserve_counter) and
// turns them into codes locally, so servers sharing a database never issue the same code and a
// create costs no extra round trip for the counter. A LinkStore is the default CounterSource;
// RedisCounterSource (redis_counter_source.h) takes the blocks from Redis instead.
//
// Implementations: SqliteLinkStore (below, the embedded default) and PostgresLinkStore
// (postgres_link_store.h, for many servers). Both pass link_store_test.cc.
//
// Thread safety: every implementation is safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "keel/core/clock.h"

namespace keel::sqlite {
class Database;
}

namespace keel::shortener {

struct Link {
  std::string code;
  std::string url;  // normalised
  WallTime created_at{};
  std::optional<WallTime> expires_at = std::nullopt;
  bool custom_alias = false;
  bool deleted = false;
  // Dedup applies: no alias, no expiry.
  bool plain() const noexcept { return !custom_alias && !expires_at; }
};

// Whether a store can keep `text` as a code or URL: PostgreSQL's text cannot hold NUL, so no
// store takes one (insert throws std::invalid_argument; a lookup finds nothing). Codes and URLs
// the Shortener makes never contain one.
inline bool storable(std::string_view text) noexcept {
  return text.find('\0') == std::string_view::npos;
}

// Throws std::invalid_argument unless the link's code and URL are storable().
void require_storable(const Link& link);
// Throws std::invalid_argument unless 0 < count <= 2^63 - 1 (a signed 64-bit SQL integer).
void require_counter_count(std::uint64_t count);

// Where counter values come from: every value is handed out once, whichever process asks.
//
// Thread safety: every implementation is safe to call from any number of threads.
class CounterSource {
 public:
  virtual ~CounterSource() = default;
  // Reserves `count` consecutive counter values and returns the first. Throws
  // std::invalid_argument for a count outside [1, 2^63) (require_counter_count), BackendError
  // (or the engine's own subclass of it) on failure.
  virtual std::uint64_t reserve_counter(std::uint64_t count) = 0;
};

class LinkStore : public CounterSource {
 public:
  // Stores a new link. Returns false (and stores nothing) when the code is taken — by a live
  // link or a tombstone — or, for a plain link, when a plain link with the same URL exists (then
  // `existing` receives it). Throws std::invalid_argument for a code or URL that is not
  // storable().
  virtual bool insert(const Link& link, std::optional<Link>* existing = nullptr) = 0;
  virtual std::optional<Link> find(std::string_view code) = 0;
  // The plain link whose URL is `url`, if any.
  virtual std::optional<Link> find_plain(std::string_view url) = 0;
  // Tombstones the link; false when there is no live link with that code.
  virtual bool remove(std::string_view code, WallTime at) = 0;
  // The store's own counter (see CounterSource), durable with the links.
  std::uint64_t reserve_counter(std::uint64_t count) override = 0;
};

class SqliteLinkStore final : public LinkStore {
 public:
  // Opens (or creates) the database at `path`. Throws sqlite::Error.
  explicit SqliteLinkStore(const std::string& path);
  ~SqliteLinkStore() override;

  bool insert(const Link& link, std::optional<Link>* existing = nullptr) override;
  std::optional<Link> find(std::string_view code) override;
  std::optional<Link> find_plain(std::string_view url) override;
  bool remove(std::string_view code, WallTime at) override;
  std::uint64_t reserve_counter(std::uint64_t count) override;

 private:
  std::optional<Link> find_plain_locked(std::string_view url);
  std::mutex mutex_;
  std::unique_ptr<sqlite::Database> db_;
};

}  // namespace keel::shortener
