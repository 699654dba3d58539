#include <chrono>
#include <stdexcept>

#include "case_studies/url_shortener/link_store.h"
#include "keel/core/encoding.h"
#include "keel/sqlite/database.h"

namespace keel::shortener {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS links (
  code        TEXT PRIMARY KEY,
  url         TEXT NOT NULL,
  url_md5     TEXT NOT NULL,
  plain       INTEGER NOT NULL,      -- no alias, no expiry: dedup applies
  custom      INTEGER NOT NULL,
  created_ms  INTEGER NOT NULL,
  expires_ms  INTEGER,
  deleted_ms  INTEGER                -- a tombstone when set
);
-- One plain link per URL digest: the dedup rule, held by the database even across servers.
CREATE UNIQUE INDEX IF NOT EXISTS links_plain_by_md5 ON links (url_md5) WHERE plain = 1;
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES (1, 0);
)sql";

std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
WallTime from_ms(std::int64_t ms) {
  return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})};
}

constexpr std::string_view kColumns =
    "code, url, custom, created_ms, expires_ms, deleted_ms FROM links";

Link read_link(const sqlite::Statement& row) {
  Link link;
  link.code = row.column_text(0);
  link.url = row.column_text(1);
  link.custom_alias = row.column_int64(2) != 0;
  link.created_at = from_ms(row.column_int64(3));
  if (!row.column_is_null(4)) link.expires_at = from_ms(row.column_int64(4));
  link.deleted = !row.column_is_null(5);
  return link;
}

}  // namespace

SqliteLinkStore::SqliteLinkStore(const std::string& path)
    : db_(std::make_unique<sqlite::Database>(path)) {
  db_->execute(kSchema);
}

SqliteLinkStore::~SqliteLinkStore() = default;

std::optional<Link> SqliteLinkStore::find_plain_locked(std::string_view url) {
  auto select = db_->prepare(std::string("SELECT ").append(kColumns).append(
      " WHERE url_md5 = ?1 AND plain = 1 AND url = ?2"));
  select.bind_text(1, md5_hex(url)).bind_text(2, url);
  if (!select.step()) return std::nullopt;
  return read_link(select);
}

bool SqliteLinkStore::insert(const Link& link, std::optional<Link>* existing) {
  require_storable(link);
  const std::lock_guard lock(mutex_);
  sqlite::Transaction tx = db_->transaction();
  const std::string digest = md5_hex(link.url);
  bool plain = link.plain();
  if (plain) {
    auto same_digest = db_->prepare("SELECT url FROM links WHERE url_md5 = ?1 AND plain = 1");
    same_digest.bind_text(1, digest);
    if (same_digest.step()) {
      if (same_digest.column_text(0) == link.url) {
        same_digest.reset();
        if (existing != nullptr) *existing = find_plain_locked(link.url);
        return false;
      }
      plain = false;  // an MD5 collision: keep this link out of dedup rather than mix targets
    }
  }
  auto insert = db_->prepare(
      "INSERT OR IGNORE INTO links (code, url, url_md5, plain, custom, created_ms, expires_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  insert.bind_text(1, link.code)
      .bind_text(2, link.url)
      .bind_text(3, digest)
      .bind_int64(4, plain ? 1 : 0)
      .bind_int64(5, link.custom_alias ? 1 : 0)
      .bind_int64(6, to_ms(link.created_at));
  if (link.expires_at) {
    insert.bind_int64(7, to_ms(*link.expires_at));
  } else {
    insert.bind_null(7);
  }
  insert.step();
  if (db_->changes() == 0) return false;  // the code is taken (live or tombstone)
  tx.commit();
  return true;
}

std::optional<Link> SqliteLinkStore::find(std::string_view code) {
  if (!storable(code)) return std::nullopt;
  const std::lock_guard lock(mutex_);
  auto select = db_->prepare(std::string("SELECT ").append(kColumns).append(" WHERE code = ?1"));
  select.bind_text(1, code);
  if (!select.step()) return std::nullopt;
  return read_link(select);
}

std::optional<Link> SqliteLinkStore::find_plain(std::string_view url) {
  if (!storable(url)) return std::nullopt;
  const std::lock_guard lock(mutex_);
  return find_plain_locked(url);
}

bool SqliteLinkStore::remove(std::string_view code, WallTime at) {
  if (!storable(code)) return false;
  const std::lock_guard lock(mutex_);
  // A tombstone leaves dedup: the next request for the URL gets a new code.
  auto update = db_->prepare(
      "UPDATE links SET deleted_ms = ?2, plain = 0 WHERE code = ?1 AND deleted_ms IS NULL");
  update.bind_text(1, code).bind_int64(2, to_ms(at));
  update.step();
  return db_->changes() == 1;
}

std::uint64_t SqliteLinkStore::reserve_counter(std::uint64_t count) {
  require_counter_count(count);
  const std::lock_guard lock(mutex_);
  sqlite::Transaction tx = db_->transaction();
  auto update = db_->prepare("UPDATE counter SET next = next + ?1 WHERE id = 1 RETURNING next");
  update.bind_int64(1, static_cast<std::int64_t>(count));
  if (!update.step()) throw std::logic_error("the counter row is missing");
  const auto end = static_cast<std::uint64_t>(update.column_int64(0));
  update.reset();
  tx.commit();
  return end - count;
}

}  // namespace keel::shortener
