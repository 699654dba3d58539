#include "case_studies/url_shortener/postgres_link_store.h"

#include <chrono>
#include <stdexcept>
#include <utility>

#include "keel/core/encoding.h"
#include "keel/postgres/connection.h"

namespace keel::shortener {

namespace {

using postgres::Param;
using postgres::Result;
using postgres::Row;

// Run in one transaction with the advisory lock (released at its end) taken first: servers
// starting together on an empty database create the schema one after the other.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS shortener_links (
  code       text    PRIMARY KEY,
  url        text    NOT NULL,
  url_md5    text    NOT NULL,
  plain      boolean NOT NULL,  -- no alias, no expiry: dedup applies
  custom     boolean NOT NULL,
  created_ms bigint  NOT NULL,
  expires_ms bigint,
  deleted_ms bigint             -- a tombstone when set
);
-- One plain link per URL digest: the dedup rule, held by the database across servers.
CREATE UNIQUE INDEX IF NOT EXISTS shortener_links_plain_by_md5
  ON shortener_links (url_md5) WHERE plain;
CREATE TABLE IF NOT EXISTS shortener_counter (
  id   boolean PRIMARY KEY DEFAULT true CHECK (id),  -- a single row
  next bigint  NOT NULL                              -- the first value not reserved yet
);
INSERT INTO shortener_counter (id, next) VALUES (true, 0) ON CONFLICT DO NOTHING;
)sql";

constexpr std::string_view kLockSchema =
    "SELECT pg_advisory_xact_lock(hashtext('keel.shortener.schema'))";

// The columns read_link() reads (a macro: the statements are concatenated at compile time).
#define KEEL_LINK_COLUMNS \
  "code, url, custom, created_ms, expires_ms, deleted_ms FROM shortener_links"

std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
WallTime from_ms(std::int64_t ms) {
  return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})};
}

Link read_link(const Row& row) {
  Link link;
  link.code = row.as_text(0);
  link.url = row.as_text(1);
  link.custom_alias = row.as_bool(2);
  link.created_at = from_ms(row.as_int64(3));
  if (!row.is_null(4)) link.expires_at = from_ms(row.as_int64(4));
  link.deleted = !row.is_null(5);
  return link;
}

std::optional<Link> first_link(const Result& rows) {
  if (rows.empty()) return std::nullopt;
  return read_link(rows[0]);
}

}  // namespace

// A connection taken from the pool for one call, given back when the Lease goes.
class PostgresLinkStore::Lease {
 public:
  Lease(PostgresLinkStore& store, std::unique_ptr<postgres::Connection> connection)
      : store_(store), connection_(std::move(connection)) {}
  ~Lease() { store_.give_back(std::move(connection_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  postgres::Connection* operator->() const noexcept { return connection_.get(); }

 private:
  PostgresLinkStore& store_;
  std::unique_ptr<postgres::Connection> connection_;
};

PostgresLinkStore::PostgresLinkStore(const std::string& connection_string,
                                     PostgresLinkStoreOptions options)
    : connection_string_(connection_string), options_(options) {
  if (options_.connections == 0) {
    throw std::invalid_argument("PostgresLinkStore: connections must be > 0");
  }
  auto first = std::make_unique<postgres::Connection>(connection_string_);
  postgres::Transaction tx = first->transaction();
  tx.execute(kLockSchema);
  tx.execute(kSchema);
  tx.commit();
  idle_.push_back(std::move(first));
  open_ = 1;
}

PostgresLinkStore::~PostgresLinkStore() = default;

PostgresLinkStore::Lease PostgresLinkStore::lease() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [&] { return !idle_.empty() || open_ < options_.connections; });
  if (!idle_.empty()) {
    std::unique_ptr<postgres::Connection> connection = std::move(idle_.back());
    idle_.pop_back();
    return Lease(*this, std::move(connection));
  }
  ++open_;  // the slot is ours while the connection opens, outside the lock
  lock.unlock();
  try {
    return Lease(*this, std::make_unique<postgres::Connection>(connection_string_));
  } catch (...) {
    lock.lock();
    --open_;
    returned_.notify_one();
    throw;
  }
}

void PostgresLinkStore::give_back(std::unique_ptr<postgres::Connection> connection) {
  // A connection lost meanwhile stays: postgres::Connection opens it again on its next use.
  {
    const std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  returned_.notify_one();
}

bool PostgresLinkStore::insert(const Link& link, std::optional<Link>* existing) {
  require_storable(link);
  const Lease db = lease();
  const std::string digest = md5_hex(link.url);
  bool plain = link.plain();
  // A plain insert that conflicts may have met another server's insert of the same URL (the
  // unique index makes it wait for that one to commit): the second round finds it.
  for (int round = 0; round < 2; ++round) {
    if (plain) {
      std::optional<Link> same_digest = first_link(
          db->execute("SELECT " KEEL_LINK_COLUMNS " WHERE url_md5 = $1 AND plain", {digest}));
      if (same_digest) {
        if (same_digest->url == link.url) {
          if (existing != nullptr) *existing = std::move(same_digest);
          return false;
        }
        plain = false;  // an MD5 collision: keep this link out of dedup rather than mix targets
      }
    }
    const Result inserted = db->execute(
        "INSERT INTO shortener_links (code, url, url_md5, plain, custom, created_ms, expires_ms) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        {link.code, link.url, digest, plain, link.custom_alias, to_ms(link.created_at),
         link.expires_at ? Param(to_ms(*link.expires_at)) : Param(nullptr)});
    if (inserted.affected_rows() == 1) return true;
    if (!plain) return false;  // the code is taken (live or tombstone)
  }
  return false;
}

std::optional<Link> PostgresLinkStore::find(std::string_view code) {
  if (!storable(code)) return std::nullopt;
  const Lease db = lease();
  return first_link(db->execute("SELECT " KEEL_LINK_COLUMNS " WHERE code = $1", {code}));
}

std::optional<Link> PostgresLinkStore::find_plain(std::string_view url) {
  if (!storable(url)) return std::nullopt;
  const Lease db = lease();
  return first_link(db->execute("SELECT " KEEL_LINK_COLUMNS
                                " WHERE url_md5 = $1 AND plain AND url = $2",
                                {md5_hex(url), url}));
}

bool PostgresLinkStore::remove(std::string_view code, WallTime at) {
  if (!storable(code)) return false;
  const Lease db = lease();
  // A tombstone leaves dedup: the next request for the URL gets a new code.
  return db->execute(
               "UPDATE shortener_links SET deleted_ms = $2, plain = false "
               "WHERE code = $1 AND deleted_ms IS NULL",
               {code, to_ms(at)})
             .affected_rows() == 1;
}

std::uint64_t PostgresLinkStore::reserve_counter(std::uint64_t count) {
  require_counter_count(count);
  const Lease db = lease();
  // One statement: the row lock serialises the servers, and the block is theirs once it commits.
  const Result end =
      db->execute("UPDATE shortener_counter SET next = next + $1 WHERE id RETURNING next",
                  {static_cast<std::int64_t>(count)});
  if (end.empty()) throw std::logic_error("PostgresLinkStore: the counter row is missing");
  return static_cast<std::uint64_t>(end[0].as_int64(0)) - count;
}

#undef KEEL_LINK_COLUMNS

}  // namespace keel::shortener
