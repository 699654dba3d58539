#include "case_studies/url_shortener/codes.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

namespace keel::shortener {
namespace {

TEST(Codes, AreSevenBase62CharactersAndInvertible) {
  const CodeGenerator codes("test-key");
  for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2},
                                std::uint64_t{123456789}, kCodeSpace - 1}) {
    const std::string code = codes.code(n);
    EXPECT_TRUE(is_code(code)) << code;
    EXPECT_EQ(codes.counter(code), n);
  }
  EXPECT_THROW(codes.code(kCodeSpace), std::out_of_range);
  EXPECT_THROW(codes.counter("abc"), std::invalid_argument);
  EXPECT_THROW(codes.counter("abc-123"), std::invalid_argument);
  EXPECT_THROW(CodeGenerator(""), std::invalid_argument);
}

TEST(Codes, ConsecutiveCountersGiveUnrelatedUniqueCodes) {
  const CodeGenerator codes("test-key");
  std::set<std::string> seen;
  int same_prefix = 0;
  std::string previous;
  for (std::uint64_t n = 0; n < 100'000; ++n) {
    const std::string code = codes.code(n);
    EXPECT_TRUE(seen.insert(code).second) << "duplicate " << code;
    if (!previous.empty() && code.substr(0, 4) == previous.substr(0, 4)) ++same_prefix;
    previous = code;
  }
  // Sequential counters would share their first 4 digits almost always; here it is chance
  // (1 in 62^4 per pair).
  EXPECT_LT(same_prefix, 5);
}

TEST(Codes, TheKeyDecidesTheOrder) {
  const CodeGenerator a("key-a");
  const CodeGenerator b("key-b");
  int equal = 0;
  for (std::uint64_t n = 0; n < 1000; ++n) equal += a.code(n) == b.code(n) ? 1 : 0;
  EXPECT_LT(equal, 2);
  EXPECT_EQ(CodeGenerator("key-a").code(42), a.code(42));  // deterministic for one key
}

TEST(Codes, PermuteIsABijectionOnASampleOfTheDomain) {
  const CodeGenerator codes("k");
  for (std::uint64_t n = kCodeSpace - 50'000; n < kCodeSpace; ++n) {
    const std::uint64_t p = codes.permute(n);
    ASSERT_LT(p, kCodeSpace);
    ASSERT_EQ(codes.unpermute(p), n);
  }
}

}  // namespace
}  // namespace keel::shortener
