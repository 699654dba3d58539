#include "case_studies/url_shortener/shortener.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace keel::shortener {
namespace {

using namespace std::chrono_literals;

class ShortenerTest : public ::testing::Test {
 protected:
  ShortenerOptions options() {
    return {.base_url = "https://sho.rt/", .code_key = "test", .counter_block = 10,
            .clock = &clock_};
  }
  std::string path() const { return (dir_.path() / "links.db").string(); }

  keel::testing::TempDir dir_{"keel-shortener"};
  ManualClock clock_;
  SqliteLinkStore store_{path()};
  Shortener shortener_{store_, options()};
};

TEST_F(ShortenerTest, ShortensResolvesAndDeduplicates) {
  const CreateResult first = shortener_.create({.url = "HTTPS://Example.com:443"});
  EXPECT_TRUE(first.created);
  EXPECT_TRUE(is_code(first.link.code));
  EXPECT_EQ(first.link.url, "https://example.com/");
  EXPECT_EQ(shortener_.short_url(first.link.code), fmt::format("https://sho.rt/{}", first.link.code));

  const CreateResult again = shortener_.create({.url = "https://example.com/"});
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.link.code, first.link.code);

  const CreateResult other = shortener_.create({.url = "https://example.com/other"});
  EXPECT_TRUE(other.created);
  EXPECT_NE(other.link.code, first.link.code);

  const Resolution to = shortener_.resolve(first.link.code);
  EXPECT_EQ(to.state, Resolution::State::found);
  EXPECT_EQ(to.url, "https://example.com/");
  EXPECT_EQ(shortener_.resolve("zzzzzzz").state, Resolution::State::not_found);
}

TEST_F(ShortenerTest, RepeatedResolvesAreServedFromTheCache) {
  const std::string code = shortener_.create({.url = "https://example.com/"}).link.code;
  for (int i = 0; i < 5; ++i) shortener_.resolve(code);
  EXPECT_EQ(shortener_.cache_stats().loads, 1u);
  EXPECT_EQ(shortener_.cache_stats().hits, 4u);
}

TEST_F(ShortenerTest, AliasesAreCheckedAndNeverShared) {
  const CreateResult aliased = shortener_.create({.url = "https://example.com/", .alias = "promo"});
  EXPECT_EQ(aliased.link.code, "promo");
  EXPECT_TRUE(aliased.created);
  // Dedup does not apply to aliased links: a plain request gets a code of its own.
  EXPECT_NE(shortener_.create({.url = "https://example.com/"}).link.code, "promo");
  try {
    shortener_.create({.url = "https://example.org/", .alias = "promo"});
    FAIL();
  } catch (const ShortenerError& e) {
    EXPECT_EQ(e.code(), "alias_taken");
  }
  try {
    shortener_.create({.url = "https://example.org/", .alias = "api"});
    FAIL();
  } catch (const ShortenerError& e) {
    EXPECT_EQ(e.code(), "invalid_alias");
  }
}

TEST_F(ShortenerTest, BadUrlsAndPastExpiriesAreRefused) {
  for (const std::string url : {"javascript:alert(1)", "https://sho.rt/abcdefg", "not a url"}) {
    try {
      shortener_.create({.url = url});
      FAIL() << url;
    } catch (const ShortenerError& e) {
      EXPECT_EQ(e.code(), "invalid_url") << url;
    }
  }
  try {
    shortener_.create({.url = "https://example.com/", .expires_at = clock_.wall_now() - 1s});
    FAIL();
  } catch (const ShortenerError& e) {
    EXPECT_EQ(e.code(), "invalid_expiry");
  }
}

TEST_F(ShortenerTest, ExpiredAndDeletedLinksAreGoneAndTheirCodesNeverReused) {
  const std::string expiring =
      shortener_.create({.url = "https://example.com/sale", .expires_at = clock_.wall_now() + 1h})
          .link.code;
  EXPECT_EQ(shortener_.resolve(expiring).state, Resolution::State::found);
  clock_.advance(2h);
  EXPECT_EQ(shortener_.resolve(expiring).state, Resolution::State::gone);

  const std::string code = shortener_.create({.url = "https://example.com/"}).link.code;
  EXPECT_EQ(shortener_.resolve(code).state, Resolution::State::found);  // now cached
  EXPECT_TRUE(shortener_.remove(code));
  EXPECT_FALSE(shortener_.remove(code));
  EXPECT_EQ(shortener_.resolve(code).state, Resolution::State::gone);
  EXPECT_THROW(shortener_.create({.url = "https://example.org/", .alias = code}), ShortenerError);
  // The URL leaves dedup with its deleted link: the next request gets a new code.
  const CreateResult fresh = shortener_.create({.url = "https://example.com/"});
  EXPECT_TRUE(fresh.created);
  EXPECT_NE(fresh.link.code, code);
}

TEST_F(ShortenerTest, TwoServersOnOneDatabaseNeverIssueTheSameCode) {
  SqliteLinkStore other_store(path());
  Shortener other(other_store, options());
  std::set<std::string> codes;
  std::vector<std::string> a, b;
  std::thread ta([&] {
    for (int i = 0; i < 200; ++i) {
      a.push_back(shortener_.create({.url = fmt::format("https://example.com/a/{}", i)}).link.code);
    }
  });
  std::thread tb([&] {
    for (int i = 0; i < 200; ++i) {
      b.push_back(other.create({.url = fmt::format("https://example.com/b/{}", i)}).link.code);
    }
  });
  ta.join();
  tb.join();
  for (const auto& code : a) codes.insert(code);
  for (const auto& code : b) codes.insert(code);
  EXPECT_EQ(codes.size(), 400u);
}

TEST_F(ShortenerTest, ConcurrentCreatesOfOneUrlEndWithOneCode) {
  SqliteLinkStore other_store(path());
  Shortener other(other_store, options());
  std::string code_a, code_b;
  std::thread ta([&] { code_a = shortener_.create({.url = "https://example.com/x"}).link.code; });
  std::thread tb([&] { code_b = other.create({.url = "https://example.com/x"}).link.code; });
  ta.join();
  tb.join();
  EXPECT_EQ(code_a, code_b);
}

}  // namespace
}  // namespace keel::shortener
