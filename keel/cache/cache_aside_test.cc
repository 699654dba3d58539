// CacheAside used as a user would: a repository in front of a "database" that counts its calls.
#include "keel/cache/cache_aside.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

#include "keel/cache/lru_cache.h"

namespace keel::cache {
namespace {

using std::chrono::seconds;

struct FakeDatabase {
  std::map<int, std::string> users{{1, "ada"}, {2, "grace"}};
  int reads = 0;
  std::optional<std::string> find(int id) {
    ++reads;
    const auto it = users.find(id);
    return it == users.end() ? std::nullopt : std::optional(it->second);
  }
};

class CacheAsideTest : public ::testing::Test {
 protected:
  CacheAside<int, std::string> make(CacheAsideOptions options = {}) {
    return CacheAside<int, std::string>(
        cache_, [this](const int& id) { return db_.find(id); }, std::move(options), clock_);
  }
  ManualClock clock_;
  FakeDatabase db_;
  LruCache<int, std::string> cache_{100, {}, clock_};
};

TEST_F(CacheAsideTest, AMissLoadsOnceAndHitsNeverTouchTheSource) {
  auto users = make({.ttl = seconds(60)});
  EXPECT_EQ(users.get(1), "ada");
  EXPECT_EQ(users.get(1), "ada");
  EXPECT_EQ(users.get(1), "ada");
  EXPECT_EQ(db_.reads, 1);
  const CacheAsideStats s = users.stats();
  EXPECT_EQ(s.hits, 2U);
  EXPECT_EQ(s.misses, 1U);
  EXPECT_EQ(s.loads, 1U);
}

TEST_F(CacheAsideTest, LoadedEntriesExpireWithTheirTtl) {
  auto users = make({.ttl = seconds(60)});
  users.get(1);
  clock_.advance(seconds(60));
  users.get(1);
  EXPECT_EQ(db_.reads, 2);
}

TEST_F(CacheAsideTest, AWriteThenInvalidateIsSeenByTheNextRead) {
  auto users = make();
  EXPECT_EQ(users.get(2), "grace");
  db_.users[2] = "grace hopper";  // update the source...
  users.invalidate(2);            // ...then invalidate
  EXPECT_EQ(users.get(2), "grace hopper");
  EXPECT_EQ(db_.reads, 2);
  EXPECT_EQ(users.stats().invalidations, 1U);
}

TEST_F(CacheAsideTest, NotFoundReachesTheSourceEveryTimeUnlessNegativeCachingIsOn) {
  auto plain = make();
  EXPECT_EQ(plain.get(404), std::nullopt);
  EXPECT_EQ(plain.get(404), std::nullopt);
  EXPECT_EQ(db_.reads, 2);

  auto negative = make({.negative_ttl = seconds(5)});
  EXPECT_EQ(negative.get(405), std::nullopt);
  EXPECT_EQ(negative.get(405), std::nullopt);
  EXPECT_EQ(db_.reads, 3);
  EXPECT_EQ(negative.stats().negative_hits, 1U);
  clock_.advance(seconds(5));
  db_.users[405] = "created since";
  EXPECT_EQ(negative.get(405), "created since");
  db_.users.erase(405);
  negative.invalidate(405);
  EXPECT_EQ(negative.get(405), std::nullopt) << "invalidate also drops a cached value";
}

TEST_F(CacheAsideTest, ALoaderErrorIsRethrownAndNotCached) {
  int calls = 0;
  CacheAside<int, std::string> flaky(
      cache_,
      [&](const int&) -> std::optional<std::string> {
        if (++calls == 1) throw std::runtime_error("database unavailable");
        return "ok";
      },
      {}, clock_);
  EXPECT_THROW(flaky.get(1), std::runtime_error);
  EXPECT_EQ(flaky.get(1), "ok");
  EXPECT_EQ(flaky.stats().load_errors, 1U);
}

TEST_F(CacheAsideTest, AnInvalidationDuringALoadKeepsTheLoadedValueOutOfTheCache) {
  CacheAside<int, std::string>* self = nullptr;
  CacheAside<int, std::string> users(
      cache_,
      [&](const int& id) {
        auto old = db_.find(id);  // reads the old row...
        db_.users[id] = "new";    // ...while a writer updates it
        self->invalidate(id);     // and invalidates
        return old;
      },
      {}, clock_);
  self = &users;
  EXPECT_EQ(users.get(1), "ada") << "the caller gets what was loaded";
  EXPECT_EQ(cache_.get(1), std::nullopt) << "but the possibly stale value was not cached";
}

TEST_F(CacheAsideTest, TtlJitterSpreadsExpiries) {
  auto users = make({.ttl = seconds(100), .ttl_jitter = 0.2});
  for (int id = 1000; id < 1100; ++id) db_.users.emplace(id, "u");
  for (int id = 1000; id < 1100; ++id) users.get(id);
  clock_.advance(seconds(80) - Duration(1));
  for (int id = 1000; id < 1100; ++id) EXPECT_TRUE(cache_.get(id)) << "no ttl below 80 s";
  clock_.advance(seconds(10));
  int expired = 0;
  for (int id = 1000; id < 1100; ++id) expired += cache_.get(id) ? 0 : 1;
  EXPECT_GT(expired, 20) << "some expired between 80 and 90 s";
  EXPECT_LT(expired, 80) << "but not all at once";
}

// A cache that fails on demand, as a remote one does when its server is unreachable.
class FailingCache final : public Cache<int, std::string> {
 public:
  bool fail_gets = false, fail_puts = false;
  std::optional<std::string> get(const int& key) override {
    if (fail_gets) throw std::runtime_error("cache down");
    return inner.get(key);
  }
  void put(const int& key, std::string value, std::optional<Duration> ttl) override {
    if (fail_puts) throw std::runtime_error("cache down");
    inner.put(key, std::move(value), ttl);
  }
  bool erase(const int& key) override { return inner.erase(key); }
  std::size_t size() const override { return inner.size(); }
  std::size_t capacity() const override { return inner.capacity(); }
  void clear() override { inner.clear(); }
  CacheStats stats() const override { return inner.stats(); }
  LruCache<int, std::string> inner{100};
};

TEST_F(CacheAsideTest, ACacheThatThrowsOnPutStillReturnsTheLoadedValueAndNeverHangsAKey) {
  FailingCache failing;
  failing.fail_puts = true;
  CacheAside<int, std::string> users(failing, [this](const int& id) { return db_.find(id); });
  EXPECT_EQ(users.get(1), "ada");
  EXPECT_EQ(users.stats().store_errors, 1U);
  failing.fail_puts = false;
  EXPECT_EQ(users.get(1), "ada") << "the key's flight was finished: no caller waits forever";
  EXPECT_EQ(users.get(1), "ada");
  EXPECT_EQ(db_.reads, 2);
}

TEST_F(CacheAsideTest, ACacheThatThrowsOnGetFailsTheCallWithoutHangingTheKey) {
  FailingCache failing;
  CacheAside<int, std::string> users(failing, [this](const int& id) { return db_.find(id); });
  failing.fail_gets = true;
  EXPECT_THROW(users.get(1), std::runtime_error);
  failing.fail_gets = false;
  EXPECT_EQ(users.get(1), "ada");
}

TEST_F(CacheAsideTest, InvalidOptionsAreRefused) {
  EXPECT_THROW(make({.ttl = Duration::zero()}), std::invalid_argument);
  EXPECT_THROW(make({.negative_ttl = -seconds(1)}), std::invalid_argument);
  EXPECT_THROW(make({.ttl = seconds(1), .ttl_jitter = 1.0}), std::invalid_argument);
  EXPECT_THROW(make({.ttl_jitter = 0.1}), std::invalid_argument) << "jitter needs a ttl";
  EXPECT_THROW((CacheAside<int, std::string>(cache_, {})), std::invalid_argument);
}

}  // namespace
}  // namespace keel::cache
