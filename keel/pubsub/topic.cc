#include "keel/pubsub/topic.h"

#include "keel/core/encoding.h"

#include <fmt/format.h>

#include <cstdint>
#include <vector>

namespace keel::pubsub {
namespace {

enum class Kind { topic, pattern };

[[noreturn]] void fail(Kind kind, std::string_view input, std::string_view reason) {
  throw InvalidTopic(fmt::format("invalid {} {}: {}", kind == Kind::topic ? "topic" : "pattern",
                                 quote_for_message(input), reason));
}

bool is_wildcard_char(char c) { return c == '*' || c == '#' || c == '>'; }

// Printable ASCII without the space: whitespace and control bytes are never part of a token.
bool is_printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

std::string empty_token_reason(std::string_view input, std::size_t begin) {
  if (begin == 0) return "empty token (it starts with '.')";
  if (begin == input.size()) return "empty token (it ends with '.')";
  return fmt::format("empty token ('..' at byte {})", begin - 1);
}

// Checks one token starting at byte `begin` of `input`; `last` says whether it ends the input.
void validate_token(Kind kind, std::string_view input, std::size_t begin, std::string_view token,
                    bool last) {
  if (token.empty()) fail(kind, input, empty_token_reason(input, begin));
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char c = token[i];
    if (!is_printable(c)) {
      fail(kind, input,
           fmt::format("forbidden character {} at byte {} (tokens are printable ASCII without "
                       "whitespace)",
                       quote_for_message(token.substr(i, 1)), begin + i));
    }
    if (!is_wildcard_char(c)) continue;
    if (kind == Kind::topic) {
      fail(kind, input,
           fmt::format("wildcard '{}' at byte {} (wildcards are for patterns, not published "
                       "topics)",
                       c, begin + i));
    }
    if (token.size() > 1) {
      fail(kind, input,
           fmt::format("wildcard '{}' inside token {} (a wildcard must be a whole token)", c,
                       quote_for_message(token)));
    }
    if (c == '>' && !last) fail(kind, input, "'>' must be the last token");
  }
}

void validate(Kind kind, std::string_view input) {
  if (input.empty()) fail(kind, input, "it is empty");
  if (input.size() > kMaxTopicBytes) {
    fail(kind, input,
         fmt::format("{} bytes, over the limit of {} bytes", input.size(), kMaxTopicBytes));
  }
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = input.find('.', begin);
    const bool last = dot == std::string_view::npos;
    const std::size_t end = last ? input.size() : dot;
    validate_token(kind, input, begin, input.substr(begin, end - begin), last);
    if (last) return;
    begin = dot + 1;
  }
}

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t begin = 0;
  for (std::size_t dot; (dot = text.find('.', begin)) != std::string_view::npos; begin = dot + 1) {
    tokens.push_back(text.substr(begin, dot - begin));
  }
  tokens.push_back(text.substr(begin));
  return tokens;
}

// The reference matcher, written to be obviously correct (the trie is tested against it):
// does pattern[p..] match topic[t..]? Memoized on (p, t), because patterns with several '#'
// would otherwise take exponential time on long topics.
class Matcher {
 public:
  Matcher(std::string_view pattern, std::string_view topic)
      : pattern_(split(pattern)),
        topic_(split(topic)),
        memo_((pattern_.size() + 1) * (topic_.size() + 1), kUnknown) {}

  bool matches(std::size_t p, std::size_t t) {
    std::int8_t& known = memo_[p * (topic_.size() + 1) + t];
    if (known == kUnknown) known = compute(p, t) ? 1 : 0;
    return known == 1;
  }

 private:
  static constexpr std::int8_t kUnknown = -1;

  bool compute(std::size_t p, std::size_t t) {
    const bool topic_left = t < topic_.size();
    if (p == pattern_.size()) return !topic_left;
    const std::string_view token = pattern_[p];
    if (token == "#") return matches(p + 1, t) || (topic_left && matches(p, t + 1));
    if (token == ">") return topic_left;  // the last token (validated): takes all that is left
    if (!topic_left) return false;
    return (token == "*" || token == topic_[t]) && matches(p + 1, t + 1);
  }

  std::vector<std::string_view> pattern_;
  std::vector<std::string_view> topic_;
  std::vector<std::int8_t> memo_;
};

}  // namespace

void validate_topic(std::string_view topic) { validate(Kind::topic, topic); }

void validate_pattern(std::string_view pattern) { validate(Kind::pattern, pattern); }

bool topic_matches(std::string_view pattern, std::string_view topic) {
  validate_pattern(pattern);
  validate_topic(topic);
  return Matcher(pattern, topic).matches(0, 0);
}

}  // namespace keel::pubsub
