// The LinkStore conformance suite, run on SqliteLinkStore (a file) and PostgresLinkStore (a
// private PostgreSQL from tests/support): dedup by URL, tombstones, counter blocks, two stores on
// one database, injection strings in every field; and two Shorteners on one database hammered
// from several threads (codes never shared, one code per URL).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "case_studies/url_shortener/link_store.h"
#include "case_studies/url_shortener/postgres_link_store.h"
#include "case_studies/url_shortener/shortener.h"
#include "keel/core/errors.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"

#if defined(__SANITIZE_ADDRESS__)
// libpqxx 6.4 leaks the PGresult of a statement that finds its connection lost.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpqxx\n"; }
#endif

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;

// Opens a store on one database; every call opens another handle on the same one (another
// server, as far as the store can tell).
using OpenStore = std::function<std::unique_ptr<LinkStore>()>;

struct StoreCase {
  std::string name;
  std::function<OpenStore()> new_database;  // an empty database of its own
};

void PrintTo(const StoreCase& store_case, std::ostream* os) { *os << store_case.name; }

testing::PostgresServer& postgres_server() {
  static std::string start_error;
  static const std::unique_ptr<testing::PostgresServer> server = [] {
    try {
      return testing::PostgresServer::start();
    } catch (const std::exception& e) {
      start_error = e.what();
      return std::unique_ptr<testing::PostgresServer>();
    }
  }();
  if (server == nullptr) throw std::runtime_error("could not start PostgreSQL: " + start_error);
  return *server;
}

std::string new_postgres_database() {
  static std::atomic<int> count{0};
  return postgres_server().create_database(fmt::format("links_{}", ++count));
}

const StoreCase kSqlite{
    "sqlite", [] {
      static testing::TempDir dir("keel-link-store");
      static std::atomic<int> count{0};
      const std::string path = (dir.path() / fmt::format("links_{}.db", ++count)).string();
      return OpenStore([path] { return std::make_unique<SqliteLinkStore>(path); });
    }};

const StoreCase kPostgres{
    "postgres", [] {
      const std::string database = new_postgres_database();
      return OpenStore([database] { return std::make_unique<PostgresLinkStore>(database); });
    }};

// Whole milliseconds: both stores keep times to the millisecond.
WallTime at_ms(std::int64_t ms) {
  return WallTime{std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds{ms})};
}

Link plain_link(std::string code, std::string url) {
  return {.code = std::move(code), .url = std::move(url), .created_at = at_ms(1'700'000'000'123)};
}

class LinkStoreTest : public ::testing::TestWithParam<StoreCase> {
 protected:
  OpenStore open_ = GetParam().new_database();
  std::unique_ptr<LinkStore> store_ = open_();
};

TEST_P(LinkStoreTest, FindsWhatItStoredFieldForField) {
  const Link plain = plain_link("aaaaaaa", "https://example.com/");
  Link aliased{.code = "promo",
               .url = "https://example.com/sale?x=1#top",
               .created_at = at_ms(1'700'000'000'456),
               .expires_at = at_ms(1'800'000'000'789),
               .custom_alias = true};
  ASSERT_TRUE(store_->insert(plain));
  ASSERT_TRUE(store_->insert(aliased));

  const std::optional<Link> found = store_->find("aaaaaaa");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->code, "aaaaaaa");
  EXPECT_EQ(found->url, "https://example.com/");
  EXPECT_EQ(found->created_at, plain.created_at);
  EXPECT_FALSE(found->expires_at.has_value());
  EXPECT_FALSE(found->custom_alias);
  EXPECT_FALSE(found->deleted);

  const std::optional<Link> promo = store_->find("promo");
  ASSERT_TRUE(promo.has_value());
  EXPECT_EQ(promo->url, aliased.url);
  EXPECT_EQ(promo->created_at, aliased.created_at);
  EXPECT_EQ(promo->expires_at, aliased.expires_at);
  EXPECT_TRUE(promo->custom_alias);

  EXPECT_FALSE(store_->find("zzzzzzz").has_value());
  EXPECT_FALSE(store_->find("PROMO").has_value()) << "codes are case-sensitive";
}

TEST_P(LinkStoreTest, RefusesATakenCodeAndKeepsTheFirstLink) {
  ASSERT_TRUE(store_->insert(plain_link("abc1234", "https://example.com/first")));
  std::optional<Link> existing;
  EXPECT_FALSE(store_->insert(plain_link("abc1234", "https://example.com/second"), &existing));
  EXPECT_FALSE(existing.has_value()) << "a taken code is not a dedup hit";
  EXPECT_FALSE(store_->insert({.code = "abc1234",
                               .url = "https://example.com/third",
                               .created_at = at_ms(1),
                               .custom_alias = true}));
  EXPECT_EQ(store_->find("abc1234")->url, "https://example.com/first");
}

TEST_P(LinkStoreTest, KeepsOnePlainLinkPerUrl) {
  ASSERT_TRUE(store_->insert(plain_link("aaaaaaa", "https://example.com/x")));
  std::optional<Link> existing;
  EXPECT_FALSE(store_->insert(plain_link("bbbbbbb", "https://example.com/x"), &existing));
  ASSERT_TRUE(existing.has_value());
  EXPECT_EQ(existing->code, "aaaaaaa");
  EXPECT_FALSE(store_->find("bbbbbbb").has_value());
  EXPECT_EQ(store_->find_plain("https://example.com/x")->code, "aaaaaaa");
  EXPECT_FALSE(store_->find_plain("https://example.com/X").has_value());
  EXPECT_FALSE(store_->find_plain("https://example.com/y").has_value());
}

TEST_P(LinkStoreTest, AliasesAndExpiringLinksStayOutOfDedup) {
  const std::string url = "https://example.com/campaign";
  ASSERT_TRUE(
      store_->insert({.code = "promo", .url = url, .created_at = at_ms(1), .custom_alias = true}));
  ASSERT_TRUE(store_->insert(
      {.code = "eeeeeee", .url = url, .created_at = at_ms(2), .expires_at = at_ms(3)}));
  EXPECT_FALSE(store_->find_plain(url).has_value());
  ASSERT_TRUE(store_->insert(plain_link("ppppppp", url)));
  ASSERT_TRUE(
      store_->insert({.code = "promo2", .url = url, .created_at = at_ms(4), .custom_alias = true}));
  EXPECT_EQ(store_->find_plain(url)->code, "ppppppp");
}

TEST_P(LinkStoreTest, ARemovedLinkIsATombstoneWhoseCodeIsNeverTakenAgain) {
  const std::string url = "https://example.com/gone";
  ASSERT_TRUE(store_->insert(plain_link("ggggggg", url)));
  EXPECT_TRUE(store_->remove("ggggggg", at_ms(1'700'000'100'000)));
  EXPECT_FALSE(store_->remove("ggggggg", at_ms(1'700'000'200'000))) << "already a tombstone";
  EXPECT_FALSE(store_->remove("nothere", at_ms(1)));

  const std::optional<Link> tombstone = store_->find("ggggggg");
  ASSERT_TRUE(tombstone.has_value());
  EXPECT_TRUE(tombstone->deleted);
  EXPECT_EQ(tombstone->url, url);
  EXPECT_FALSE(store_->insert(plain_link("ggggggg", "https://example.com/other")));
  EXPECT_FALSE(store_->insert(
      {.code = "ggggggg", .url = url, .created_at = at_ms(1), .custom_alias = true}));

  // The URL left dedup with its deleted link: a new plain link for it is stored.
  EXPECT_FALSE(store_->find_plain(url).has_value());
  std::optional<Link> existing;
  EXPECT_TRUE(store_->insert(plain_link("hhhhhhh", url), &existing));
  EXPECT_FALSE(existing.has_value());
  EXPECT_EQ(store_->find_plain(url)->code, "hhhhhhh");
}

TEST_P(LinkStoreTest, ReservesConsecutiveBlocksAndRefusesEmptyOnes) {
  const std::uint64_t first = store_->reserve_counter(10);
  EXPECT_EQ(store_->reserve_counter(5), first + 10);
  EXPECT_EQ(store_->reserve_counter(1), first + 15);
  EXPECT_THROW(store_->reserve_counter(0), std::invalid_argument);
  EXPECT_THROW(store_->reserve_counter(std::numeric_limits<std::uint64_t>::max()),
               std::invalid_argument);
  EXPECT_EQ(store_->reserve_counter(1), first + 16) << "a refused reservation takes nothing";
}

TEST_P(LinkStoreTest, AStoreOpenedAgainSeesEverythingAndContinuesTheCounter) {
  ASSERT_TRUE(store_->insert(plain_link("aaaaaaa", "https://example.com/")));
  ASSERT_TRUE(store_->remove("aaaaaaa", at_ms(5)));
  ASSERT_TRUE(store_->insert(plain_link("bbbbbbb", "https://example.com/b")));
  const std::uint64_t end = store_->reserve_counter(100) + 100;
  store_.reset();
  const std::unique_ptr<LinkStore> again = open_();
  EXPECT_TRUE(again->find("aaaaaaa")->deleted);
  EXPECT_EQ(again->find_plain("https://example.com/b")->code, "bbbbbbb");
  EXPECT_EQ(again->reserve_counter(1), end);
}

// Every field of a link takes what an attacker would send, stored and found as given.
TEST_P(LinkStoreTest, InjectionStringsInEveryFieldAreStoredAsGiven) {
  const std::vector<std::string> evil = {
      "'; DROP TABLE shortener_links; --",
      "x' OR '1'='1",
      "Robert'); DROP TABLE links;--",
      "\\'; SELECT pg_sleep(10); --",
      "$1 $2 ?1 ?2 %s %d {}",
      "\"quoted\" `backticks` ;",
      "üñíçødé ✓ 😀",
      "\x01\x02\x7f tab\t newline\n",
      std::string(2048, '\''),
  };
  int i = 0;
  for (const std::string& text : evil) {
    SCOPED_TRACE(text);
    const std::string code = fmt::format("{}{}", text, i++);
    const std::string url = fmt::format("https://example.com/{}", text);
    ASSERT_TRUE(store_->insert(plain_link(code, url)));
    EXPECT_EQ(store_->find(code)->url, url);
    EXPECT_EQ(store_->find_plain(url)->code, code);
    std::optional<Link> existing;
    EXPECT_FALSE(store_->insert(plain_link(code + "-again", url), &existing));
    ASSERT_TRUE(existing.has_value());
    EXPECT_EQ(existing->code, code);
    EXPECT_FALSE(store_->find(text).has_value());
    EXPECT_TRUE(store_->remove(code, at_ms(9)));
    EXPECT_TRUE(store_->find(code)->deleted);
  }
  // The tables are intact and hold exactly what was written.
  ASSERT_TRUE(store_->insert(plain_link("fine123", "https://example.com/fine")));
  EXPECT_EQ(store_->find("fine123")->url, "https://example.com/fine");
}

TEST_P(LinkStoreTest, ANulByteIsRefusedNotTruncated) {
  ASSERT_TRUE(store_->insert(plain_link("abc", "https://example.com/abc")));
  const std::string with_nul("abc\0def", 7);
  EXPECT_THROW(store_->insert(plain_link(with_nul, "https://example.com/")), std::invalid_argument);
  EXPECT_THROW(store_->insert(plain_link("nul1234", "https://example.com/" + with_nul)),
               std::invalid_argument);
  EXPECT_FALSE(store_->find(with_nul).has_value()) << "must not find 'abc'";
  EXPECT_FALSE(store_->find_plain("https://example.com/" + with_nul).has_value());
  EXPECT_FALSE(store_->remove(with_nul, at_ms(1)));
  EXPECT_FALSE(store_->find("abc")->deleted);
}

TEST_P(LinkStoreTest, TwoStoresOnOneDatabaseReserveDisjointBlocks) {
  const std::unique_ptr<LinkStore> other = open_();
  constexpr int kBlocks = 200;
  constexpr std::uint64_t kSize = 7;
  std::vector<std::uint64_t> firsts_a, firsts_b;
  std::thread a([&] {
    for (int i = 0; i < kBlocks; ++i) firsts_a.push_back(store_->reserve_counter(kSize));
  });
  std::thread b([&] {
    for (int i = 0; i < kBlocks; ++i) firsts_b.push_back(other->reserve_counter(kSize));
  });
  a.join();
  b.join();
  std::vector<std::uint64_t> all = firsts_a;
  all.insert(all.end(), firsts_b.begin(), firsts_b.end());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_GE(all[i], all[i - 1] + kSize) << "blocks overlap at " << all[i - 1];
  }
}

TEST_P(LinkStoreTest, TwoStoresInsertingOneUrlAtOnceEndWithOneLink) {
  const std::unique_ptr<LinkStore> other = open_();
  for (int round = 0; round < 20; ++round) {
    const std::string url = fmt::format("https://example.com/race/{}", round);
    bool won_a = false, won_b = false;
    std::optional<Link> existing_a, existing_b;
    std::thread a([&] {
      won_a = store_->insert(plain_link(fmt::format("a{:06}", round), url), &existing_a);
    });
    std::thread b(
        [&] { won_b = other->insert(plain_link(fmt::format("b{:06}", round), url), &existing_b); });
    a.join();
    b.join();
    ASSERT_NE(won_a, won_b) << "exactly one insert wins, round " << round;
    const std::string winner = won_a ? fmt::format("a{:06}", round) : fmt::format("b{:06}", round);
    const std::optional<Link>& loser_saw = won_a ? existing_b : existing_a;
    ASSERT_TRUE(loser_saw.has_value()) << "the loser is told the winner's link, round " << round;
    EXPECT_EQ(loser_saw->code, winner);
    EXPECT_EQ(store_->find_plain(url)->code, winner);
  }
}

// Two Shorteners (two servers) on one database, several threads each: every code is distinct,
// and a URL shortened on both gets one code.
TEST_P(LinkStoreTest, TwoShortenersHammeringOneDatabaseNeverShareACode) {
  const std::unique_ptr<LinkStore> other_store = open_();
  const ShortenerOptions options{
      .base_url = "https://sho.rt", .code_key = "hammer", .counter_block = 13};
  Shortener a(*store_, options);
  Shortener b(*other_store, options);
  constexpr int kThreads = 3;
  constexpr int kLinks = 60;
  std::mutex mutex;
  std::map<std::string, std::string> url_of_code;                    // guarded by mutex
  std::map<std::string, std::set<std::string>> codes_of_shared_url;  // guarded by mutex
  std::atomic<int> duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreads; ++t) {
    threads.emplace_back([&, t] {
      Shortener& node = t % 2 == 0 ? a : b;
      for (int i = 0; i < kLinks; ++i) {
        const std::string url = fmt::format("https://example.com/{}/{}", t, i);
        const CreateResult own = node.create({.url = url});
        const std::string shared_url = fmt::format("https://example.com/shared/{}", i);
        const CreateResult shared = node.create({.url = shared_url});
        const std::lock_guard lock(mutex);
        if (!url_of_code.emplace(own.link.code, url).second) duplicates.fetch_add(1);
        codes_of_shared_url[shared_url].insert(shared.link.code);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_EQ(url_of_code.size(), 2u * kThreads * kLinks);
  for (const auto& [url, codes] : codes_of_shared_url) {
    EXPECT_EQ(codes.size(), 1u) << url << " got several codes";
    EXPECT_FALSE(url_of_code.contains(*codes.begin())) << "a shared URL's code was reused";
  }
  for (const auto& [code, url] : url_of_code) {
    ASSERT_EQ(a.resolve(code).url, url);
    ASSERT_EQ(b.resolve(code).url, url);
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, LinkStoreTest, ::testing::Values(kSqlite, kPostgres),
                         [](const ::testing::TestParamInfo<StoreCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(PostgresLinkStoreTest, StoresOpeningTogetherOnAnEmptyDatabaseCreateTheSchemaOnce) {
  const std::string database = new_postgres_database();
  std::vector<std::unique_ptr<PostgresLinkStore>> stores(4);
  std::vector<std::thread> threads;
  for (auto& store : stores) {
    threads.emplace_back([&] { store = std::make_unique<PostgresLinkStore>(database); });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::uint64_t> firsts;
  for (auto& store : stores) {
    ASSERT_NE(store, nullptr);
    firsts.insert(store->reserve_counter(1));
  }
  EXPECT_EQ(firsts, (std::set<std::uint64_t>{0, 1, 2, 3}));
}

TEST(PostgresLinkStoreTest, AnUnreachableServerIsABackendErrorNamingIt) {
  try {
    PostgresLinkStore store("host=127.0.0.1 port=1 dbname=none connect_timeout=2");
    FAIL() << "connected to nothing";
  } catch (const BackendError& e) {
    EXPECT_EQ(e.backend(), "postgres");
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PostgresLinkStore(postgres_server().connection_string(), {.connections = 0}),
               std::invalid_argument);
}

}  // namespace
}  // namespace keel::shortener
