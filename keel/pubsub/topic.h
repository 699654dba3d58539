// Topics and patterns of keel::pubsub, and matching one against the other.
//
// A topic is one or more non-empty tokens separated by '.'; tokens are printable ASCII without
// whitespace, '.', '*', '#', '>'. Example: "orders.created". At most 1,024 bytes.
// A pattern is a topic whose tokens may also be the wildcards
//   '*'  exactly one token,
//   '#'  zero or more tokens, anywhere (as in AMQP topic exchanges),
//   '>'  one or more tokens, last token only (as in NATS).
// So "orders.*" matches "orders.created" but not "orders" or "orders.created.eu"; "orders.#"
// matches all three; "orders.>" the last two; "#.eu" matches "eu" and "orders.created.eu".
// Matching is case-sensitive.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace keel::pubsub {

// Invalid topic or pattern; what() names the input (escaped, and cut after 64 bytes) and the
// reason, as in "invalid pattern 'orders.>.eu': '>' must be the last token".
class InvalidTopic : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

inline constexpr std::size_t kMaxTopicBytes = 1024;

// Throw InvalidTopic with the reason: empty, an empty token ("a..b", "orders."), a wildcard in a
// topic, a wildcard inside a token ("ord*"), '>' not last, a forbidden character, over 1,024 bytes.
void validate_topic(std::string_view topic);
void validate_pattern(std::string_view pattern);

// Validates both (throwing InvalidTopic), then matches. Time O(pattern tokens x topic tokens),
// whatever the number of '#'; it allocates, so a bus indexes many patterns in a trie instead.
bool topic_matches(std::string_view pattern, std::string_view topic);

}  // namespace keel::pubsub
