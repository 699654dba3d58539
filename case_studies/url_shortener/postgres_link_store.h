// PostgresLinkStore: the shortener's LinkStore on PostgreSQL, for many servers sharing one
// database (docs/url_shortener.md, "Many nodes").
//
//   PostgresLinkStore store("host=10.0.0.7 dbname=shortener user=shortener");
//   Shortener shortener(store, {.base_url = "https://sho.rt", .code_key = secret});
//
// The same semantics as SqliteLinkStore (link_store.h; link_store_test.cc runs one suite on
// both): one table, shortener_links, with the code as primary key and a unique index on the MD5
// of plain links, so that the database itself holds the dedup rule across servers; tombstones
// for deleted links; counter blocks from a single counter row (UPDATE ... RETURNING, one short
// transaction per block). Every statement binds its values as parameters.
//
// The schema is created on first use, under a transaction-scoped advisory lock, so that servers
// starting together against an empty database do not race on CREATE ... IF NOT EXISTS.
//
// Connections: a small pool (options.connections), opened as needed; a statement takes one for
// its round trip. A lost connection fails that call with postgres::Error (a BackendError) and is
// opened again by the next one.
//
// Thread safety: safe to call from any number of threads; up to options.connections statements
// run at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "case_studies/url_shortener/link_store.h"

namespace keel::postgres {
class Connection;
}

namespace keel::shortener {

struct PostgresLinkStoreOptions {
  // Connections held at most: the statements that can run at once. Default: 4.
  // REQUIRES: > 0.
  std::size_t connections = 4;
};

class PostgresLinkStore final : public LinkStore {
 public:
  // Connects (libpq connection string or URI) and creates the schema when it is missing. Throws
  // postgres::Error when the server cannot be reached or refuses, std::invalid_argument for
  // invalid options.
  explicit PostgresLinkStore(const std::string& connection_string,
                             PostgresLinkStoreOptions options = {});
  ~PostgresLinkStore() override;
  PostgresLinkStore(const PostgresLinkStore&) = delete;
  PostgresLinkStore& operator=(const PostgresLinkStore&) = delete;

  bool insert(const Link& link, std::optional<Link>* existing = nullptr) override;
  std::optional<Link> find(std::string_view code) override;
  std::optional<Link> find_plain(std::string_view url) override;
  bool remove(std::string_view code, WallTime at) override;
  std::uint64_t reserve_counter(std::uint64_t count) override;

 private:
  class Lease;
  Lease lease();
  void give_back(std::unique_ptr<postgres::Connection> connection);

  const std::string connection_string_;
  const PostgresLinkStoreOptions options_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<postgres::Connection>> idle_;  // guarded by mutex_
  std::size_t open_ = 0;  // idle + leased + being opened; guarded by mutex_
};

}  // namespace keel::shortener
