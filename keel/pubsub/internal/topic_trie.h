// A trie of patterns (tokens as edges, with wildcard branches) that finds every pattern matching
// a topic in time that grows with the topic's length and the number of matches, not with the
// number of patterns (not public; the EventBus's index of subscriptions).
//
// Each entry is a (pattern, id) pair; several ids may share a pattern. match() reports each
// matching id once, even when '#' lets a pattern match along several paths. Const members may
// run concurrently with each other; insert/erase need exclusive access (the bus guards it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace keel::pubsub::internal {

class TopicTrie {
 public:
  using Id = std::uint64_t;

  TopicTrie();
  ~TopicTrie();
  TopicTrie(const TopicTrie&) = delete;
  TopicTrie& operator=(const TopicTrie&) = delete;

  // REQUIRES: a valid pattern (validate_pattern). Inserting an (pattern, id) pair twice keeps one.
  void insert(std::string_view pattern, Id id);
  // Returns whether the pair was there. Prunes nodes left empty.
  bool erase(std::string_view pattern, Id id);
  // Replaces the contents of `out` with the ids of every entry whose pattern matches `topic`,
  // each once, in ascending order. REQUIRES: a valid topic (validate_topic).
  // Cost: O(tokens of the topic x patterns partly matched so far), whatever size() is; no
  // allocation beyond `out` once the calling thread has matched a topic before.
  void match(std::string_view topic, std::vector<Id>& out) const;
  std::size_t size() const noexcept { return size_; }

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  std::size_t size_ = 0;
};

}  // namespace keel::pubsub::internal
