// Least-recently-used order for one shard (not public).
#pragma once

#include <cstddef>
#include <cstdint>

#include "keel/core/internal/intrusive_list.h"

namespace keel::cache::internal {

using keel::internal::Hook;
using keel::internal::HookList;

class LruPolicy {
 public:
  struct Node : Hook {};

  explicit LruPolicy(std::size_t capacity) : capacity_(capacity) {}

  void record_miss(std::uint64_t /*hash*/) noexcept {}
  void record_hit(Node* node) noexcept { order_.move_to_front(node); }
  // A new entry (the shard holds size entries, this one included). Returns the entry to evict,
  // or nullptr.
  Node* insert(Node* node, std::uint64_t /*hash*/) noexcept {
    order_.push_front(node);
    return order_.size() > capacity_ ? static_cast<Node*>(order_.back()) : nullptr;
  }
  // A replaced value counts as a use.
  void update(Node* node) noexcept { order_.move_to_front(node); }
  void remove(Node* node) noexcept { order_.remove(node); }
  void clear() noexcept { order_.clear(); }

 private:
  std::size_t capacity_;
  HookList order_;
};

}  // namespace keel::cache::internal
