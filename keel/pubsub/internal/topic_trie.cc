#include "keel/pubsub/internal/topic_trie.h"

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <utility>

namespace keel::pubsub::internal {
namespace {

// Transparent hash, so that a token (string_view) finds its edge without building a string.
struct TokenHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view token) const noexcept {
    return std::hash<std::string_view>{}(token);
  }
};

// Calls f(token) for each '.'-separated token of `text`, left to right, without allocating.
template <typename F>
void for_each_token(std::string_view text, F&& f) {
  std::size_t begin = 0;
  for (std::size_t dot; (dot = text.find('.', begin)) != std::string_view::npos; begin = dot + 1) {
    f(text.substr(begin, dot - begin));
  }
  f(text.substr(begin));
}

}  // namespace

// A node stands for a pattern prefix; the ids of the patterns that end here are kept sorted.
struct TopicTrie::Node {
  explicit Node(bool after_hash) : is_hash(after_hash) {}

  bool empty() const { return ids.empty() && exact.empty() && !star && !hash && !gt; }

  // The child reached by `token`, or a null slot to fill; wildcards have their own slots.
  std::unique_ptr<Node>& slot(std::string_view token) {
    if (token == "*") return star;
    if (token == "#") return hash;
    if (token == ">") return gt;
    auto it = exact.find(token);
    if (it == exact.end()) it = exact.emplace(std::string(token), nullptr).first;
    return it->second;
  }

  // The child reached by `token`, or nullptr; never creates one.
  Node* child(std::string_view token) const {
    if (token == "*") return star.get();
    if (token == "#") return hash.get();
    if (token == ">") return gt.get();
    const auto it = exact.find(token);
    return it == exact.end() ? nullptr : it->second.get();
  }

  // Removes the child reached by `token` (which must be empty).
  void remove(std::string_view token) {
    if (token == "*") {
      star.reset();
    } else if (token == "#") {
      hash.reset();
    } else if (token == ">") {
      gt.reset();
    } else {
      exact.erase(exact.find(token));
    }
  }

  // Whether the edge into this node is '#': such a node may absorb any number of further tokens.
  const bool is_hash;
  std::vector<Id> ids;
  std::unordered_map<std::string, std::unique_ptr<Node>, TokenHash, std::equal_to<>> exact;
  std::unique_ptr<Node> star;
  std::unique_ptr<Node> hash;
  std::unique_ptr<Node> gt;  // '>' is last: this child only ever holds ids
};

TopicTrie::TopicTrie() : root_(std::make_unique<Node>(false)) {}

TopicTrie::~TopicTrie() = default;

void TopicTrie::insert(std::string_view pattern, Id id) {
  Node* node = root_.get();
  for_each_token(pattern, [&](std::string_view token) {
    std::unique_ptr<Node>& next = node->slot(token);
    if (!next) next = std::make_unique<Node>(token == "#");
    node = next.get();
  });
  const auto it = std::lower_bound(node->ids.begin(), node->ids.end(), id);
  if (it != node->ids.end() && *it == id) return;
  node->ids.insert(it, id);
  ++size_;
}

bool TopicTrie::erase(std::string_view pattern, Id id) {
  // The path from the root, as (node, token that leads from it to the next node).
  std::vector<std::pair<Node*, std::string_view>> path;
  Node* node = root_.get();
  bool found = true;
  for_each_token(pattern, [&](std::string_view token) {
    if (!found) return;
    Node* next = node->child(token);
    if (next == nullptr) {
      found = false;
      return;
    }
    path.emplace_back(node, token);
    node = next;
  });
  if (!found) return false;
  const auto it = std::lower_bound(node->ids.begin(), node->ids.end(), id);
  if (it == node->ids.end() || *it != id) return false;
  node->ids.erase(it);
  --size_;
  // Prune from the leaf up while nodes are left empty; the root always stays.
  for (auto step = path.rbegin(); step != path.rend() && node->empty(); ++step) {
    step->first->remove(step->second);
    node = step->first;
  }
  return true;
}

// Simulates the pattern automaton over the topic's tokens, left to right: `live` holds the nodes
// whose pattern prefix matches the tokens read so far, each once. Every step costs the number of
// live nodes (each a hash lookup), so a match costs O(tokens x live nodes), whatever the number of
// patterns, and several '#' in a pattern never explode into exponentially many paths.
void TopicTrie::match(std::string_view topic, std::vector<Id>& out) const {
  out.clear();
  // Reused by each thread, so a match allocates nothing once warm (and const stays thread-safe).
  thread_local std::vector<const Node*> live;
  thread_local std::vector<const Node*> next;

  // Drops duplicates, then adds the nodes that '#' edges reach without taking a token. A '#'
  // child that was live before the token is already there (it took the token), so it is skipped:
  // each node then enters once, which keeps a chain of '#' linear rather than quadratic.
  // REQUIRES: `before` sorted and unique; leaves `nodes` sorted and unique.
  const auto close = [](std::vector<const Node*>& nodes, const std::vector<const Node*>& before) {
    std::sort(nodes.begin(), nodes.end(), std::less<>());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    const std::size_t taken = nodes.size();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const Node* hash = nodes[i]->hash.get();
      if (hash && !std::binary_search(before.begin(), before.end(), hash, std::less<>())) {
        nodes.push_back(hash);
      }
    }
    if (nodes.size() > taken) std::sort(nodes.begin(), nodes.end(), std::less<>());
  };

  live.assign(1, root_.get());
  close(live, {});
  for_each_token(topic, [&](std::string_view token) {
    next.clear();
    for (const Node* node : live) {
      // '>' takes this token and all that follow: its patterns match, whatever comes next.
      if (node->gt) out.insert(out.end(), node->gt->ids.begin(), node->gt->ids.end());
      if (node->is_hash) next.push_back(node);
      if (node->star) next.push_back(node->star.get());
      if (const auto it = node->exact.find(token); it != node->exact.end()) {
        next.push_back(it->second.get());
      }
    }
    close(next, live);
    live.swap(next);
  });
  for (const Node* node : live) out.insert(out.end(), node->ids.begin(), node->ids.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

}  // namespace keel::pubsub::internal
