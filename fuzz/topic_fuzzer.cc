// Topics and patterns (keel/pubsub/topic.h) and the subscription trie (internal/topic_trie.h),
// differentially: validation and matching are compared with a reference written here from the
// rules in topic.h, independently of the library's code.
//
// Input: lines. The first byte % 4 + 1 lines are patterns, the others topics. Every valid
// pattern goes into a TopicTrie (its line number as id, inserted twice: a no-op the second
// time); every valid topic is matched against the trie and against each pattern with the
// reference matcher and with topic_matches(). Then every other pattern is erased and the
// matches are compared again, which exercises pruning.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/check.h"
#include "keel/pubsub/internal/topic_trie.h"
#include "keel/pubsub/topic.h"

namespace {

using keel::pubsub::internal::TopicTrie;

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> tokens;
  while (true) {
    const std::size_t dot = text.find('.');
    tokens.push_back(text.substr(0, dot));
    if (dot == std::string_view::npos) return tokens;
    text.remove_prefix(dot + 1);
  }
}

bool is_wildcard(char c) { return c == '*' || c == '#' || c == '>'; }

// topic.h: non-empty, at most 1,024 bytes, '.'-separated non-empty tokens of printable ASCII
// without space; in a topic no wildcard character at all; in a pattern a wildcard is a whole
// token, and '>' only the last one.
bool reference_valid(std::string_view text, bool pattern) {
  if (text.empty() || text.size() > keel::pubsub::kMaxTopicBytes) return false;
  const std::vector<std::string_view> tokens = split(text);
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view token = tokens[i];
    if (token.empty()) return false;
    for (const char c : token) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) return false;
      if (is_wildcard(c) && (!pattern || token.size() != 1)) return false;
    }
    if (token == ">" && i + 1 != tokens.size()) return false;
  }
  return true;
}

// Bottom-up table: match[p][t] says whether pattern tokens [p..) match topic tokens [t..).
// '*' takes one token, '#' zero or more, '>' (last) one or more.
bool reference_matches(std::string_view pattern, std::string_view topic) {
  const std::vector<std::string_view> ps = split(pattern);
  const std::vector<std::string_view> ts = split(topic);
  const std::size_t np = ps.size();
  const std::size_t nt = ts.size();
  std::vector<std::vector<bool>> match(np + 1, std::vector<bool>(nt + 1, false));
  match[np][nt] = true;
  for (std::size_t p = np; p-- > 0;) {
    for (std::size_t t = nt + 1; t-- > 0;) {
      const bool left = t < nt;
      const std::string_view token = ps[p];
      if (token == "#") {
        match[p][t] = match[p + 1][t] || (left && match[p][t + 1]);
      } else if (token == ">") {
        match[p][t] = left;
      } else if (token == "*") {
        match[p][t] = left && match[p + 1][t + 1];
      } else {
        match[p][t] = left && token == ts[t] && match[p + 1][t + 1];
      }
    }
  }
  return match[0][0];
}

// Whether validation throws (only InvalidTopic may come out), with a bounded, printable message.
bool library_valid(std::string_view text, bool pattern) {
  try {
    pattern ? keel::pubsub::validate_pattern(text) : keel::pubsub::validate_topic(text);
    return true;
  } catch (const keel::pubsub::InvalidTopic& e) {
    const std::string_view what = e.what();
    KEEL_FUZZ_CHECK(what.size() < 1024, "a {}-byte error message", what.size());
    KEEL_FUZZ_CHECK(
        std::all_of(what.begin(), what.end(), [](char c) { return c >= 0x20 && c < 0x7f; }),
        "raw control or non-ASCII bytes in the message: {}", what);
    return false;
  }
}

struct Pattern {
  std::string text;
  TopicTrie::Id id;
  bool in_trie;
};

void compare(const TopicTrie& trie, const std::vector<Pattern>& patterns, std::string_view topic) {
  std::vector<TopicTrie::Id> got;
  trie.match(topic, got);
  std::vector<TopicTrie::Id> want;
  for (const Pattern& p : patterns) {
    const bool expected = reference_matches(p.text, topic);
    KEEL_FUZZ_CHECK(keel::pubsub::topic_matches(p.text, topic) == expected,
                    "topic_matches('{}', '{}') != reference {}", p.text, topic, expected);
    if (p.in_trie && expected) want.push_back(p.id);
  }
  std::sort(want.begin(), want.end());
  KEEL_FUZZ_CHECK(got == want, "trie matched [{}] for topic '{}', reference [{}]",
                  fmt::join(got, ","), topic, fmt::join(want, ","));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  keel::fuzz::Input input(data, size);
  const std::size_t pattern_lines = input.byte() % 4 + 1;
  std::vector<Pattern> patterns;
  std::vector<std::string_view> topics;
  for (std::size_t line = 0; !input.empty(); ++line) {
    const std::string_view text = input.until('\n');
    const bool is_pattern = line < pattern_lines;
    const bool valid = library_valid(text, is_pattern);
    KEEL_FUZZ_CHECK(valid == reference_valid(text, is_pattern), "{} '{}': library says {}",
                    is_pattern ? "pattern" : "topic", text, valid ? "valid" : "invalid");
    if (!valid) continue;
    if (is_pattern) {
      patterns.push_back({std::string(text), line, true});
    } else {
      topics.push_back(text);
    }
  }

  TopicTrie trie;
  for (const Pattern& p : patterns) {
    trie.insert(p.text, p.id);
    trie.insert(p.text, p.id);
  }
  KEEL_FUZZ_CHECK(trie.size() == patterns.size(), "size {} after {} distinct inserts", trie.size(),
                  patterns.size());
  for (const std::string_view topic : topics) compare(trie, patterns, topic);

  std::size_t left = patterns.size();
  for (std::size_t i = 0; i < patterns.size(); i += 2) {
    KEEL_FUZZ_CHECK(trie.erase(patterns[i].text, patterns[i].id), "erase of '{}' found nothing",
                    patterns[i].text);
    KEEL_FUZZ_CHECK(!trie.erase(patterns[i].text, patterns[i].id), "'{}' erased twice",
                    patterns[i].text);
    patterns[i].in_trie = false;
    --left;
  }
  KEEL_FUZZ_CHECK(trie.size() == left, "size {} with {} left", trie.size(), left);
  for (const std::string_view topic : topics) compare(trie, patterns, topic);
  return 0;
}
