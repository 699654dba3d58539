// A user repository as an application would write one on keel: reads through cache-aside,
// writes to the database then invalidate. The integration tests run it on SQLite with an
// in-process cache, and on PostgreSQL with Redis (and the two-tier cache) as the cache.
//
// Thread safety: as its UserTable and cache (the tables here guard their connection).
#pragma once

#include <atomic>
#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "keel/cache/cache.h"
#include "keel/cache/cache_aside.h"

namespace keel::testing {

struct UserData {
  std::string name;
  std::string email;
};

struct User {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  bool operator==(const User&) const = default;
};

// A User as Redis bytes: "<id>:<name length>:<name><email>" (any bytes in name and email).
struct UserCodec {
  static std::string encode(const User& user) {
    return std::to_string(user.id) + ":" + std::to_string(user.name.size()) + ":" + user.name +
           user.email;
  }
  static User decode(std::string_view bytes) {
    User user;
    const std::size_t name_length = number(bytes, user.id);
    std::size_t length = 0;
    const std::size_t name_start = name_length + number(bytes.substr(name_length), length);
    if (bytes.size() - name_start < length) throw std::invalid_argument("UserCodec: truncated");
    user.name = bytes.substr(name_start, length);
    user.email = bytes.substr(name_start + length);
    return user;
  }

 private:
  // Parses "<number>:" at the start of `bytes`; returns the length consumed.
  template <class T>
  static std::size_t number(std::string_view bytes, T& value) {
    const auto [end, error] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), value);
    if (error != std::errc() || end == bytes.data() + bytes.size() || *end != ':') {
      throw std::invalid_argument("UserCodec: malformed user");
    }
    return static_cast<std::size_t>(end - bytes.data()) + 1;
  }
};

// The source of truth: users(id INTEGER PRIMARY KEY, name TEXT, email TEXT).
class UserTable {
 public:
  virtual ~UserTable() = default;
  virtual std::optional<User> find(std::int64_t id) = 0;
  // Whether the user exists (and was updated).
  virtual bool update(std::int64_t id, const UserData& data) = 0;
};

class UserRepository {
 public:
  UserRepository(UserTable& table, cache::Cache<std::int64_t, User>& cache,
                 cache::CacheAsideOptions options = {}, const Clock& clock = default_clock())
      : table_(table),
        users_(
            cache,
            [this](const std::int64_t& id) {
              source_reads_.fetch_add(1, std::memory_order_relaxed);
              return table_.find(id);
            },
            std::move(options), clock) {}

  std::optional<User> get_user(std::int64_t id) { return users_.get(id); }

  // Writes the database first, then drops the cached copy (never the other way round: a read
  // between the two would cache the old row again).
  bool update_user(std::int64_t id, const UserData& data) {
    if (!table_.update(id, data)) return false;
    users_.invalidate(id);
    return true;
  }

  // Reads that reached the database.
  std::uint64_t source_reads() const { return source_reads_.load(std::memory_order_relaxed); }
  cache::CacheAsideStats stats() const { return users_.stats(); }

 private:
  UserTable& table_;
  std::atomic<std::uint64_t> source_reads_{0};
  cache::CacheAside<std::int64_t, User> users_;
};

}  // namespace keel::testing
