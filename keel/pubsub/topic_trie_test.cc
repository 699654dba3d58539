#include "keel/pubsub/internal/topic_trie.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "keel/pubsub/topic.h"

namespace keel::pubsub::internal {
namespace {

using Id = TopicTrie::Id;
using Ids = std::vector<Id>;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

Ids match(const TopicTrie& trie, std::string_view topic) {
  Ids out;
  trie.match(topic, out);
  return out;
}

TEST(TopicTrieTest, EmptyTrieMatchesNothing) {
  const TopicTrie trie;
  EXPECT_EQ(trie.size(), 0U);
  EXPECT_THAT(match(trie, "orders.created"), IsEmpty());
}

TEST(TopicTrieTest, ExactPatternMatchesOnlyItsTopic) {
  TopicTrie trie;
  trie.insert("orders.created", 1);
  EXPECT_THAT(match(trie, "orders.created"), ElementsAre(1U));
  EXPECT_THAT(match(trie, "orders"), IsEmpty());
  EXPECT_THAT(match(trie, "orders.created.eu"), IsEmpty());
  EXPECT_THAT(match(trie, "Orders.created"), IsEmpty());
}

TEST(TopicTrieTest, WildcardsMatchAsInTheIssueExamples) {
  TopicTrie trie;
  trie.insert("orders.*", 1);
  trie.insert("orders.#", 2);
  trie.insert("orders.>", 3);
  trie.insert("#.eu", 4);
  EXPECT_THAT(match(trie, "orders"), ElementsAre(2U));
  EXPECT_THAT(match(trie, "orders.created"), ElementsAre(1U, 2U, 3U));
  EXPECT_THAT(match(trie, "orders.created.eu"), ElementsAre(2U, 3U, 4U));
  EXPECT_THAT(match(trie, "eu"), ElementsAre(4U));
  EXPECT_THAT(match(trie, "payments.eu.created"), IsEmpty());
}

TEST(TopicTrieTest, SeveralIdsOnOnePatternComeOutAscending) {
  TopicTrie trie;
  for (Id id : {7U, 3U, 9U, 1U}) trie.insert("orders.*", id);
  trie.insert("orders.created", 5);
  EXPECT_EQ(trie.size(), 5U);
  EXPECT_THAT(match(trie, "orders.created"), ElementsAre(1U, 3U, 5U, 7U, 9U));
}

TEST(TopicTrieTest, InsertingAPairTwiceKeepsOne) {
  TopicTrie trie;
  trie.insert("a.b", 1);
  trie.insert("a.b", 1);
  EXPECT_EQ(trie.size(), 1U);
  EXPECT_TRUE(trie.erase("a.b", 1));
  EXPECT_FALSE(trie.erase("a.b", 1));
  EXPECT_EQ(trie.size(), 0U);
}

TEST(TopicTrieTest, APatternMatchingAlongSeveralPathsReportsItsIdOnce) {
  TopicTrie trie;
  trie.insert("#.a.#", 1);
  trie.insert("#.#.#", 2);
  EXPECT_THAT(match(trie, "a.a.a"), ElementsAre(1U, 2U));
}

TEST(TopicTrieTest, OneIdUnderOverlappingPatternsIsReportedOnceUntilAllAreErased) {
  TopicTrie trie;
  trie.insert("#", 1);
  trie.insert("#.#", 1);
  trie.insert("a.#", 1);
  EXPECT_EQ(trie.size(), 3U);
  EXPECT_THAT(match(trie, "a.b"), ElementsAre(1U));
  EXPECT_TRUE(trie.erase("#", 1));
  EXPECT_THAT(match(trie, "a.b"), ElementsAre(1U));
  EXPECT_TRUE(trie.erase("#.#", 1));
  EXPECT_THAT(match(trie, "a.b"), ElementsAre(1U));
  EXPECT_THAT(match(trie, "b"), IsEmpty());
  EXPECT_TRUE(trie.erase("a.#", 1));
  EXPECT_THAT(match(trie, "a.b"), IsEmpty());
}

TEST(TopicTrieTest, EraseReportsWhetherThePairWasThere) {
  TopicTrie trie;
  trie.insert("a.b.c", 1);
  EXPECT_FALSE(trie.erase("a.b.c", 2)) << "another id";
  EXPECT_FALSE(trie.erase("a.b", 1)) << "a prefix of the pattern";
  EXPECT_FALSE(trie.erase("a.b.c.d", 1)) << "an extension of the pattern";
  EXPECT_FALSE(trie.erase("a.*.c", 1)) << "a wildcard is not the token it matches";
  EXPECT_EQ(trie.size(), 1U);
  EXPECT_TRUE(trie.erase("a.b.c", 1));
}

TEST(TopicTrieTest, ErasingALongPatternKeepsTheShorterOnesOnItsPath) {
  TopicTrie trie;
  trie.insert("a.#", 1);
  trie.insert("a.#.c", 2);
  trie.insert("a.#.c.>", 3);
  EXPECT_TRUE(trie.erase("a.#.c.>", 3));
  EXPECT_THAT(match(trie, "a.c"), ElementsAre(1U, 2U));
  EXPECT_TRUE(trie.erase("a.#", 1));
  EXPECT_THAT(match(trie, "a.b.c"), ElementsAre(2U));
  EXPECT_TRUE(trie.erase("a.#.c", 2));
  EXPECT_THAT(match(trie, "a.b.c"), IsEmpty());
  trie.insert("a.#.c", 4);
  EXPECT_THAT(match(trie, "a.b.c"), ElementsAre(4U)) << "the pruned path grows back";
}

TEST(TopicTrieTest, MatchReplacesWhatOutHeld) {
  TopicTrie trie;
  trie.insert("a", 2);
  Ids out{9, 8};
  trie.match("a", out);
  EXPECT_THAT(out, ElementsAre(2U));
  trie.match("b", out);
  EXPECT_THAT(out, IsEmpty());
}

TEST(TopicTrieTest, ManyHashesOnALongTopicTakePolynomialTime) {
  // Following every path would try every way to split 400 tokens among 300 '#'.
  std::string pattern = "#";
  for (int i = 1; i < 300; ++i) pattern += ".#";
  std::string topic = "a";
  for (int i = 1; i < 400; ++i) topic += ".a";
  TopicTrie trie;
  trie.insert(pattern + ".a", 1);
  trie.insert(pattern + ".b", 2);
  EXPECT_THAT(match(trie, topic), ElementsAre(1U));
}

TEST(TopicTrieTest, ConcurrentMatchesOnASharedTrieAgree) {
  TopicTrie trie;
  trie.insert("orders.*", 1);
  trie.insert("#.eu", 2);
  trie.insert("orders.#", 3);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (std::size_t t = 0; t < wrong.size(); ++t) {
    threads.emplace_back([&trie, &wrong, t] {
      Ids out;
      for (int i = 0; i < 2'000; ++i) {
        trie.match("orders.eu", out);
        if (out != Ids{1, 2, 3}) ++wrong[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(wrong, ElementsAre(0, 0, 0, 0));
}

// The differential tests: the trie against topic_matches, the reference matcher, over a small
// alphabet of tokens so that wildcards overlap often.

std::string join(const std::vector<std::string>& tokens) {
  std::string text;
  for (const std::string& token : tokens) text += (text.empty() ? "" : ".") + token;
  return text;
}

// Every sequence of 1..max_length tokens from `alphabet`, dropping those where '>' is not last.
std::vector<std::string> all_sequences(const std::vector<std::string>& alphabet,
                                       std::size_t max_length) {
  std::vector<std::string> out;
  std::vector<std::vector<std::string>> level{{}};
  for (std::size_t length = 1; length <= max_length; ++length) {
    std::vector<std::vector<std::string>> longer;
    for (const auto& prefix : level) {
      if (!prefix.empty() && prefix.back() == ">") continue;
      for (const std::string& token : alphabet) {
        longer.push_back(prefix);
        longer.back().push_back(token);
        out.push_back(join(longer.back()));
      }
    }
    level = std::move(longer);
  }
  return out;
}

// The trie's contents kept as a plain set of (pattern, id), matched one by one.
class Model {
 public:
  void insert(const std::string& pattern, Id id) { entries_.emplace(pattern, id); }
  bool erase(const std::string& pattern, Id id) { return entries_.erase({pattern, id}) == 1; }
  std::size_t size() const { return entries_.size(); }
  const std::set<std::pair<std::string, Id>>& entries() const { return entries_; }

  Ids match(std::string_view topic) const {
    std::set<Id> ids;
    for (const auto& [pattern, id] : entries_) {
      if (topic_matches(pattern, topic)) ids.insert(id);
    }
    return {ids.begin(), ids.end()};
  }

 private:
  std::set<std::pair<std::string, Id>> entries_;
};

TEST(TopicTrieDifferentialTest, EveryShortPatternAgainstEveryShortTopic) {
  const std::vector<std::string> patterns = all_sequences({"a", "b", "*", "#", ">"}, 4);
  const std::vector<std::string> topics = all_sequences({"a", "b"}, 5);
  TopicTrie trie;
  for (std::size_t i = 0; i < patterns.size(); ++i) trie.insert(patterns[i], i);
  ASSERT_EQ(trie.size(), patterns.size());
  for (const std::string& topic : topics) {
    Ids expected;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (topic_matches(patterns[i], topic)) expected.push_back(i);
    }
    EXPECT_EQ(match(trie, topic), expected) << "topic " << topic;
  }
}

class RandomTopics {
 public:
  explicit RandomTopics(std::uint32_t seed) : random_(seed) {}

  // 1-6 tokens from a, b, c, *, #, with '>' possible as the last one.
  std::string pattern() {
    std::vector<std::string> tokens(length());
    for (std::string& token : tokens) token = pick({"a", "b", "c", "*", "#"});
    if (pick({"", "", "", ">"}) == ">") tokens.back() = std::string(1, '>');
    return join(tokens);
  }

  // 1-6 tokens from a, b, c.
  std::string topic() {
    std::vector<std::string> tokens(length());
    for (std::string& token : tokens) token = pick({"a", "b", "c"});
    return join(tokens);
  }

  Id id() { return std::uniform_int_distribution<Id>(1, 8)(random_); }

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }

 private:
  std::size_t length() { return std::uniform_int_distribution<std::size_t>(1, 6)(random_); }

  std::string pick(std::initializer_list<const char*> choices) {
    return *(choices.begin() + below(choices.size()));
  }

  std::mt19937 random_;
};

void expect_same_matches(const TopicTrie& trie, const Model& model, RandomTopics& random,
                         int topics) {
  ASSERT_EQ(trie.size(), model.size());
  for (int i = 0; i < topics; ++i) {
    const std::string topic = random.topic();
    EXPECT_EQ(match(trie, topic), model.match(topic)) << "topic " << topic;
  }
}

TEST(TopicTrieDifferentialTest, RandomInsertsAndErasesAgreeWithTheReference) {
  // A few ids (1-8) over many patterns, so that one id sits under overlapping patterns and
  // one pattern carries several ids; erasing and inserting again exercises pruning.
  for (std::uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    RandomTopics random(seed);
    TopicTrie trie;
    Model model;
    for (const char* overlapping : {"#", "#.#", "a.#"}) {
      trie.insert(overlapping, 1);
      model.insert(overlapping, 1);
    }
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 30; ++i) {
        const std::string pattern = random.pattern();
        const Id id = random.id();
        trie.insert(pattern, id);
        model.insert(pattern, id);
      }
      expect_same_matches(trie, model, random, 20);
      for (int i = 0; i < 20 && model.size() > 0; ++i) {
        auto entry = model.entries().begin();
        std::advance(entry, static_cast<std::ptrdiff_t>(random.below(model.size())));
        const auto [pattern, id] = *entry;
        EXPECT_TRUE(trie.erase(pattern, id)) << pattern << " " << id;
        model.erase(pattern, id);
        const std::string absent = random.pattern();
        EXPECT_FALSE(trie.erase(absent, 99)) << "id 99 was never inserted";
      }
      expect_same_matches(trie, model, random, 20);
    }
    for (const auto& [pattern, id] : std::set(model.entries())) {
      EXPECT_TRUE(trie.erase(pattern, id));
      model.erase(pattern, id);
    }
    expect_same_matches(trie, model, random, 5);
  }
}

}  // namespace
}  // namespace keel::pubsub::internal
