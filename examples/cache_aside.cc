// Demo of keel/cache: a user repository on a real SQLite database behind cache-aside, on a
// manual clock: every read says hit or miss and how many queries reached the database; a write
// invalidates; entries expire; a herd of concurrent misses makes one query.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "examples/demo.h"
#include "keel/cache.h"
#include "keel/sqlite.h"

namespace keel::demo {
namespace {

using std::chrono::seconds;
using namespace keel::cache;

struct User {
  std::string name;
  std::string email;
};

// The source of truth: a users table in SQLite. Counts the queries it runs.
class UserDatabase {
 public:
  explicit UserDatabase(const std::string& path) : db_(path) {
    db_.execute(
        "DROP TABLE IF EXISTS users;"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);"
        "INSERT INTO users VALUES (1, 'Ada Lovelace', 'ada@example.com'),"
        " (2, 'Grace Hopper', 'grace@example.com'), (3, 'Alan Turing', 'alan@example.com');");
  }
  std::optional<User> find(int id) {
    ++queries;
    auto statement = db_.prepare("SELECT name, email FROM users WHERE id = ?");
    statement.bind_int64(1, id);
    if (!statement.step()) return std::nullopt;
    return User{statement.column_text(0), statement.column_text(1)};
  }
  void update_email(int id, const std::string& email) {
    auto statement = db_.prepare("UPDATE users SET email = ? WHERE id = ?");
    statement.bind_text(1, email).bind_int64(2, id);
    statement.step();
  }
  std::atomic<int> queries{0};

 private:
  keel::sqlite::Database db_;
};

}  // namespace

void run_cache_aside_demo() {
  heading("A user repository on SQLite behind cache-aside (LRU, ttl 60 s, manual clock)");
  const auto path = write_demo_file("keel-cache-aside.db", "");
  ManualClock clock;
  UserDatabase db(path.string());
  LruCache<int, User> cache(1000, {}, clock);
  // For the herd below, the first loader holds its query until the other 7 callers are waiting
  // for it, as a slow query would: that makes the demo's output the same on every run.
  std::atomic<bool> hold_for_herd{false};
  CacheAside<int, User>* self = nullptr;
  CacheAside<int, User> users(
      cache,
      [&](const int& id) {
        while (hold_for_herd && self->stats().shared_loads < 7) std::this_thread::yield();
        return db.find(id);
      },
      {.ttl = seconds(60), .negative_ttl = seconds(10), .ttl_jitter = 0.1}, clock);
  self = &users;

  const auto get_user = [&](int id) {
    const CacheAsideStats before = users.stats();
    const auto user = users.get(id);
    const CacheAsideStats after = users.stats();
    const char* how = after.hits > before.hits                     ? "hit "
                      : after.negative_hits > before.negative_hits ? "hit (cached 'not found')"
                                                                   : "miss, loaded";
    fmt::print("  t={:>3.0f} s  get_user({}) -> {:<40} {:<26} db queries: {}\n",
               std::chrono::duration<double>(clock.now() - TimePoint{}).count(), id,
               user ? fmt::format("{} <{}>", user->name, user->email) : std::string("not found"),
               how, db.queries.load());
  };
  const auto update_user = [&](int id, const std::string& email) {
    db.update_email(id, email);  // write the source of truth...
    users.invalidate(id);        // ...then delete the cached copy
    fmt::print("  update_user({}, {}): UPDATE in SQLite, then invalidate({})\n", id, email, id);
  };

  get_user(1);
  get_user(1);
  get_user(2);
  get_user(1);
  update_user(1, "ada@analytical.engine");
  get_user(1);
  get_user(404);
  get_user(404);
  clock.advance(seconds(61));
  fmt::print("  ... 61 s later: the entries have expired (ttl 60 s, minus up to 10 % jitter)\n");
  get_user(1);
  get_user(2);

  heading("A thundering herd: 8 threads miss on user 3 at once");
  const int before = db.queries.load();
  hold_for_herd = true;
  std::vector<std::thread> herd;
  std::atomic<int> answered{0};
  for (int i = 0; i < 8; ++i) {
    herd.emplace_back([&] { answered += users.get(3) ? 1 : 0; });
  }
  for (auto& t : herd) t.join();
  fmt::print(
      "  {} callers answered, {} database query(s): single flight ({} waited for another's "
      "load)\n",
      answered.load(), db.queries.load() - before, users.stats().shared_loads);

  heading("Stats");
  const CacheAsideStats s = users.stats();
  const CacheStats c = cache.stats();
  fmt::print(
      "  cache-aside: {} hits, {} misses, {} loads, {} shared loads, {} negative hits, "
      "{} invalidations\n",
      s.hits, s.misses, s.loads, s.shared_loads, s.negative_hits, s.invalidations);
  fmt::print("  cache: hit rate {:.0f} %, {} expirations; database queries: {}\n",
             100 * c.hit_rate(), c.expirations, db.queries.load());
}

}  // namespace keel::demo
