#include "keel/core/encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <random>

namespace keel {
namespace {

using ::testing::HasSubstr;

TEST(Base62Test, KnownValues) {
  EXPECT_EQ(base62_encode(0), "0");
  EXPECT_EQ(base62_encode(61), "z");
  EXPECT_EQ(base62_encode(62), "10");
  EXPECT_EQ(base62_encode(std::numeric_limits<std::uint64_t>::max()), "LygHa16AHYF");
  EXPECT_EQ(base62_decode("LygHa16AHYF"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(base62_decode("0000z"), 61u);
}

TEST(Base62Test, FixedWidthPadsWithZeros) {
  EXPECT_EQ(base62_encode(61, 7), "000000z");
  EXPECT_EQ(base62_encode(0, 3), "000");
  EXPECT_THROW(base62_encode(std::uint64_t{62} * 62, 2), std::invalid_argument);
}

TEST(Base62Test, RoundTripsRandomValuesAndKeepsOrderAtFixedWidth) {
  std::mt19937_64 rng(20261128);  // fixed seed: a failure is reproducible
  std::string previous_code;
  std::uint64_t previous = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t value = rng() >> (rng() % 64);
    const std::string code = base62_encode(value);
    ASSERT_EQ(base62_decode(code), value) << code;
    const std::string fixed = base62_encode(value, kBase62MaxDigits);
    ASSERT_EQ(fixed.size(), kBase62MaxDigits);
    ASSERT_EQ(base62_decode(fixed), value);
    if (i > 0) {
      ASSERT_EQ(value < previous, fixed < previous_code)
          << "fixed-width codes sort like their values (alphabet in ASCII order)";
    }
    previous = value;
    previous_code = fixed;
  }
}

TEST(Base62Test, BadInputIsRejectedWithTheInputNamed) {
  EXPECT_THROW(base62_decode(""), std::invalid_argument);
  try {
    base62_decode("ab-c");
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'ab-c'"));
    EXPECT_THAT(e.what(), HasSubstr("position 2"));
  }
  EXPECT_THROW(base62_decode("LygHa16AHYG"), std::invalid_argument) << "UINT64_MAX + 1";
  EXPECT_THROW(base62_decode("zzzzzzzzzzzz"), std::invalid_argument);
  EXPECT_THROW(base62_decode(std::string("a\0b", 3)), std::invalid_argument);
  try {
    base62_decode("\x01\xff");
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("\\x01\\xff")) << "control bytes are shown escaped";
  }
}

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace keel
