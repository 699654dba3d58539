// How keel topics and patterns become NATS subjects, JetStream stream names and consumer names.
// Pure functions, unit-tested without a server (subjects_test.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::nats::internal {

// The NATS subscriptions that serve one keel pattern.
struct SubjectPlan {
  // One subject, or two when a '#' can also match zero tokens ("orders.#": "orders" and
  // "orders.>"). Together they cover every topic the pattern matches.
  std::vector<std::string> subjects;
  // True when the subjects also cover topics the pattern does not match ("#.eu" -> ">"): each
  // message is then checked with keel::pubsub::topic_matches before delivery.
  bool filter_locally = false;
};

// '*' and '>' mean the same in NATS and keel, so a pattern without '#' is its own subject. A
// '#' at token k widens to "<tokens before k>.>" (">" when k = 0), plus "<tokens before k>"
// when every token from k on is '#' (they can all match nothing).
// REQUIRES: a valid keel pattern (keel::pubsub::validate_pattern).
SubjectPlan subjects_for(std::string_view pattern);

// `name` made safe for a JetStream stream or consumer name: letters, digits and '-' stay, every
// other byte becomes "_XX" (hex), so different names stay different. Never empty.
std::string escape_name(std::string_view name);

// The first token of a topic or pattern ("orders" for "orders.created").
std::string_view first_token(std::string_view topic);

}  // namespace keel::nats::internal
