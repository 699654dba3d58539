#include "case_studies/url_shortener/url.h"

#include <gtest/gtest.h>

#include <string>

namespace keel::shortener {
namespace {

TEST(NormalizeUrl, OnePageHasOneForm) {
  EXPECT_EQ(normalize_url("https://example.com"), "https://example.com/");
  EXPECT_EQ(normalize_url("HTTPS://Example.COM:443/Path?Q=1#Frag"),
            "https://example.com/Path?Q=1#Frag");
  EXPECT_EQ(normalize_url("http://example.com:80/a"), "http://example.com/a");
  EXPECT_EQ(normalize_url("http://example.com:8080/a"), "http://example.com:8080/a");
  EXPECT_EQ(normalize_url("https://example.com:80/"), "https://example.com:80/");
  EXPECT_EQ(normalize_url("http://[::1]:8080/x"), "http://[::1]:8080/x");
  EXPECT_EQ(normalize_url("http://127.0.0.1/"), "http://127.0.0.1/");
  EXPECT_EQ(normalize_url("https://example.com/a%20b"), "https://example.com/a%20b");
}

TEST(NormalizeUrl, RefusesWhatIsNotAPlainWebLink) {
  for (const std::string bad : {
           "",
           "example.com",
           "/relative/path",
           "//example.com/x",
           "javascript:alert(1)",
           "JavaScript:alert(1)",
           "data:text/html,<script>alert(1)</script>",
           "file:///etc/passwd",
           "ftp://example.com/",
           "http://",
           "http:///path",
           "https://user:secret@example.com/",
           "https://user@example.com/",
           "https://exa mple.com/",
           "https://example.com/a b",
           "https://example.com/\n",
           "http://example.com:99999/",
           "http://example.com:0/",
       }) {
    EXPECT_THROW(normalize_url(bad), InvalidUrl) << bad;
  }
  EXPECT_THROW(normalize_url(std::string("https://example.com/").append(2100, 'a')), InvalidUrl);
  EXPECT_NO_THROW(normalize_url(std::string("https://example.com/").append(2000, 'a')));
}

TEST(NormalizeUrl, RefusesLinksToTheShortenerItself) {
  const UrlPolicy policy{.own_hosts = {"sho.rt"}};
  EXPECT_THROW(normalize_url("https://SHO.RT/abc1234", policy), InvalidUrl);
  EXPECT_EQ(normalize_url("https://example.com/", policy), "https://example.com/");
}

// Found by fuzz/url_fuzzer.cc (fuzz/corpus/url/port_then_path_without_slash): Boost.URL parses
// "http://a:80b.example/" as host "a", port 80, path "b.example/", and the rebuilt URL named
// another host ("http://ab.example/"), past the check for links to the shortener itself.
TEST(NormalizeUrl, APortRunningIntoThePathIsRefusedNotGluedToTheHost) {
  for (const std::string bad : {"http://ex2amplple.coj:0080le.coj:0/", "https://a:443b.example/x",
                                "http://sho:80.rt/abc"}) {
    EXPECT_THROW(normalize_url(bad, {.own_hosts = {"sho.rt"}}), InvalidUrl) << bad;
  }
  EXPECT_EQ(normalize_url("http://sho:80/.rt"), "http://sho/.rt");
}

// Found by fuzz/url_fuzzer.cc (fuzz/corpus/url/limit_reached_by_the_added_slash): a URL at the
// length limit without a path became one byte longer than the limit once "/" was added.
TEST(NormalizeUrl, TheNormalisedFormStaysWithinTheLimit) {
  const std::string at_limit = "https://example.com?" + std::string(2048 - 20, 'q');
  ASSERT_EQ(at_limit.size(), 2048u);
  EXPECT_THROW(normalize_url(at_limit), InvalidUrl);
  const std::string with_path = "https://example.com/?" + std::string(2048 - 21, 'q');
  EXPECT_EQ(normalize_url(with_path), with_path);
  EXPECT_EQ(normalize_url(normalize_url(with_path)), with_path);
}

TEST(NormalizeUrl, ErrorsSayWhy) {
  try {
    normalize_url("javascript:alert(1)");
    FAIL();
  } catch (const InvalidUrl& e) {
    EXPECT_NE(std::string(e.what()).find("not an http or https URL"), std::string::npos);
  }
}

TEST(Aliases, FollowTheGrammarAndAvoidReservedPaths) {
  EXPECT_NO_THROW(validate_alias("my-link_2"));
  EXPECT_NO_THROW(validate_alias("abc"));
  EXPECT_NO_THROW(validate_alias(std::string(64, 'a')));
  EXPECT_THROW(validate_alias("ab"), InvalidAlias);
  EXPECT_THROW(validate_alias(std::string(65, 'a')), InvalidAlias);
  EXPECT_THROW(validate_alias("has space"), InvalidAlias);
  EXPECT_THROW(validate_alias("slash/es"), InvalidAlias);
  EXPECT_THROW(validate_alias("ünï"), InvalidAlias);
  EXPECT_THROW(validate_alias("api"), InvalidAlias);
  EXPECT_THROW(validate_alias("HEALTHZ"), InvalidAlias);
  EXPECT_THROW(validate_alias("metrics"), InvalidAlias);
}

}  // namespace
}  // namespace keel::shortener
