#include "keel/pubsub/topic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace keel::pubsub {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The message of the InvalidTopic that `validate` throws for `input` (fails if none is thrown).
template <typename Validate>
std::string rejection(Validate validate, std::string_view input) {
  try {
    validate(input);
  } catch (const InvalidTopic& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InvalidTopic for '" << input << "'";
  return {};
}

std::string topic_rejection(std::string_view topic) { return rejection(validate_topic, topic); }

std::string pattern_rejection(std::string_view pattern) {
  return rejection(validate_pattern, pattern);
}

TEST(TopicTest, WellFormedTopicsAndPatternsPass) {
  for (std::string_view topic : {"orders", "orders.created", "a.b.c.d", "Orders-EU_1:v2/x@y"}) {
    EXPECT_NO_THROW(validate_topic(topic)) << topic;
    EXPECT_NO_THROW(validate_pattern(topic)) << topic << " (a topic is also a pattern)";
  }
  for (std::string_view pattern : {"*", "#", ">", "orders.*", "#.eu", "a.#.b", "*.*.>", "#.>"}) {
    EXPECT_NO_THROW(validate_pattern(pattern)) << pattern;
  }
}

TEST(TopicTest, EmptyInputIsRejected) {
  EXPECT_THAT(topic_rejection(""), HasSubstr("invalid topic '': it is empty"));
  EXPECT_THAT(pattern_rejection(""), HasSubstr("invalid pattern '': it is empty"));
}

TEST(TopicTest, EmptyTokensAreRejectedWithWhereTheyAre) {
  EXPECT_THAT(topic_rejection("a..b"), HasSubstr("'a..b': empty token ('..' at byte 1)"));
  EXPECT_THAT(topic_rejection("orders."), HasSubstr("'orders.': empty token (it ends with '.')"));
  EXPECT_THAT(topic_rejection(".orders"), HasSubstr("'.orders': empty token (it starts with '.')"));
  EXPECT_THAT(pattern_rejection("."), HasSubstr("empty token (it starts with '.')"));
  EXPECT_THAT(pattern_rejection("orders.*."), HasSubstr("empty token (it ends with '.')"));
}

TEST(TopicTest, PublishedTopicsCannotHoldWildcards) {
  EXPECT_THAT(topic_rejection("orders.*"),
              HasSubstr("invalid topic 'orders.*': wildcard '*' at byte 7 (wildcards are for "
                        "patterns, not published topics)"));
  EXPECT_THAT(topic_rejection("#"), HasSubstr("wildcard '#' at byte 0"));
  EXPECT_THAT(topic_rejection("a.b>"), HasSubstr("wildcard '>' at byte 3"));
}

TEST(TopicTest, AWildcardMustBeAWholeToken) {
  EXPECT_THAT(pattern_rejection("ord*"),
              HasSubstr("invalid pattern 'ord*': wildcard '*' inside token 'ord*' (a wildcard "
                        "must be a whole token)"));
  EXPECT_THAT(pattern_rejection("a.#b"), HasSubstr("wildcard '#' inside token '#b'"));
  EXPECT_THAT(pattern_rejection("a.>>"), HasSubstr("wildcard '>' inside token '>>'"));
}

TEST(TopicTest, GreaterThanMustBeTheLastToken) {
  EXPECT_THAT(pattern_rejection("orders.>.eu"),
              HasSubstr("invalid pattern 'orders.>.eu': '>' must be the last token"));
  EXPECT_THAT(pattern_rejection(">.>"), HasSubstr("'>' must be the last token"));
}

TEST(TopicTest, WhitespaceControlAndNonAsciiBytesAreRejectedAndEscaped) {
  EXPECT_THAT(topic_rejection("orders created"),
              HasSubstr("invalid topic 'orders created': forbidden character ' ' at byte 6 "
                        "(tokens are printable ASCII without whitespace)"));
  EXPECT_THAT(topic_rejection("a\tb"),
              HasSubstr("'a\\x09b': forbidden character '\\x09' at byte 1"));
  EXPECT_THAT(pattern_rejection("a.\x7f"), HasSubstr("forbidden character '\\x7f' at byte 2"));
  EXPECT_THAT(topic_rejection("caf\xc3\xa9"),
              HasSubstr("'caf\\xc3\\xa9': forbidden character '\\xc3' at byte 3"));
  EXPECT_THAT(topic_rejection(std::string_view("a\0b", 3)),
              HasSubstr("forbidden character '\\x00' at byte 1"));
}

TEST(TopicTest, InputOverTheLimitIsRejectedAndShownTruncated) {
  const std::string longest = std::string(kMaxTopicBytes - 2, 'a') + ".b";
  EXPECT_NO_THROW(validate_topic(longest));
  const std::string message = topic_rejection(longest + "c");
  EXPECT_THAT(message, AllOf(HasSubstr("1025 bytes, over the limit of 1024 bytes"),
                             HasSubstr("'... (1025 bytes)")));
  EXPECT_LT(message.size(), 200U) << "the input is shown truncated, not in full";
  EXPECT_THAT(pattern_rejection(std::string(1025, '#')), HasSubstr("over the limit"));
}

TEST(TopicTest, InvalidTopicIsAnInvalidArgument) {
  EXPECT_THROW(validate_topic(""), std::invalid_argument);
}

// Checks that `pattern` matches every topic of `hits` and none of `misses`.
void expect_matches(std::string_view pattern, std::initializer_list<std::string_view> hits,
                    std::initializer_list<std::string_view> misses) {
  for (std::string_view topic : hits) {
    EXPECT_TRUE(topic_matches(pattern, topic)) << pattern << " should match " << topic;
  }
  for (std::string_view topic : misses) {
    EXPECT_FALSE(topic_matches(pattern, topic)) << pattern << " should not match " << topic;
  }
}

TEST(TopicMatchesTest, TheIssueExamples) {
  expect_matches("orders.*", {"orders.created"}, {"orders", "orders.created.eu"});
  expect_matches("orders.#", {"orders", "orders.created", "orders.created.eu"}, {"payments"});
  expect_matches("orders.>", {"orders.created", "orders.created.eu"}, {"orders"});
  expect_matches("#.eu", {"eu", "orders.created.eu"}, {"orders.eu.created"});
}

TEST(TopicMatchesTest, ExactPatternsMatchOnlyTheSameTopicCaseSensitively) {
  expect_matches("orders.created", {"orders.created"},
                 {"Orders.created", "orders", "orders.create", "orders.created.eu"});
  expect_matches("orders", {"orders"}, {"orders.created"});
}

TEST(TopicMatchesTest, HashTakesZeroOrMoreTokensAnywhere) {
  expect_matches("#", {"a", "a.b.c"}, {});
  expect_matches("#.#", {"a", "a.b"}, {});
  expect_matches("a.#.b", {"a.b", "a.x.y.b"}, {"a.x.y", "b.a"});
  expect_matches("#.a.#", {"a", "x.a.y"}, {"x.y"});
  expect_matches("#.a.#.a", {"a.a", "a.x.a"}, {"a"});
}

TEST(TopicMatchesTest, StarTakesExactlyOneTokenAndGreaterThanOneOrMore) {
  expect_matches("*", {"a"}, {"a.b"});
  expect_matches("*.b.*", {"a.b.c"}, {"b.c", "a.b.c.d"});
  expect_matches(">", {"a", "a.b.c"}, {});
  expect_matches("#.>", {"a", "a.b"}, {});
  expect_matches("a.*.>", {"a.b.c", "a.b.c.d"}, {"a.b", "a"});
}

TEST(TopicMatchesTest, ValidatesBothArguments) {
  EXPECT_THAT(rejection([](std::string_view p) { topic_matches(p, "orders"); }, "ord*"),
              HasSubstr("invalid pattern 'ord*'"));
  EXPECT_THAT(rejection([](std::string_view t) { topic_matches("orders.*", t); }, "orders.*"),
              HasSubstr("invalid topic 'orders.*': wildcard '*'"));
}

TEST(TopicMatchesTest, ManyHashesOnALongTopicTakePolynomialTime) {
  // Naive backtracking would try every way to split 400 tokens among 300 '#'.
  std::string pattern = "#";
  for (int i = 1; i < 300; ++i) pattern += ".#";
  std::string topic = "a";
  for (int i = 1; i < 400; ++i) topic += ".a";
  EXPECT_FALSE(topic_matches(pattern + ".b", topic));
  EXPECT_TRUE(topic_matches(pattern + ".a", topic));
}

}  // namespace
}  // namespace keel::pubsub
