// What plain LRU would hit on the same requests (not public): an LRU of key hashes, without
// values, for the hill climber of TinyLfuPolicy.
//
// To bound its memory it follows a spatial sample of the keys, as SHARDS does (Waldspurger et
// al., "Efficient MRC Construction with SHARDS", FAST 2015): a key is in the sample when bits of
// its hash are zero, one key in `rate`, and an LRU of capacity / rate over the sampled keys hits
// about as often as an LRU of `capacity` over all of them. The rate is the smallest power of two
// that keeps the shadow within kMaxEntries, so caches up to that size are followed exactly.
// About 64 bytes per shadow entry: at most 256 KiB per shard. (With at most 1,024 entries,
// sampling one key in 8 to 32, the climber fared clearly worse on the ARC traces at 16,384 and
// 32,768 entries: the sampled hit rates are too noisy.)
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>

#include "keel/core/internal/intrusive_list.h"

namespace keel::cache::internal {

class LruShadow {
 public:
  static constexpr std::size_t kMaxEntries = 4096;

  explicit LruShadow(std::size_t capacity)
      : rate_(std::bit_ceil((std::max<std::size_t>(capacity, 1) + kMaxEntries - 1) / kMaxEntries)),
        capacity_(std::max<std::size_t>(1, capacity / rate_)) {}

  // Whether requests for `hash` are followed. The bits are taken from the middle of the hash:
  // the top ones choose the shard.
  bool sampled(std::uint64_t hash) const noexcept { return ((hash >> 20) & (rate_ - 1)) == 0; }

  // A request for a sampled key: returns whether the LRU holds it (a hit), and makes it the most
  // recent entry either way.
  bool request(std::uint64_t hash) {
    if (const auto it = entries_.find(hash); it != entries_.end()) {
      order_.move_to_front(&it->second);
      return true;
    }
    if (entries_.size() < capacity_) {
      Entry& entry = entries_[hash];
      entry.hash = hash;
      order_.push_front(&entry);
      return false;
    }
    // Full: the least recent entry's node is reused for the new key, so a miss allocates nothing.
    const std::uint64_t oldest = static_cast<const Entry*>(order_.back())->hash;
    order_.remove(order_.back());
    auto node = entries_.extract(oldest);
    node.key() = hash;
    node.mapped().hash = hash;
    order_.push_front(&entries_.insert(std::move(node)).position->second);
    return false;
  }

  void clear() noexcept {
    order_.clear();
    entries_.clear();
  }

  std::size_t rate() const noexcept { return rate_; }

 private:
  struct Entry : keel::internal::Hook {
    std::uint64_t hash = 0;
  };

  std::size_t rate_;
  std::size_t capacity_;
  keel::internal::HookList order_;
  std::unordered_map<std::uint64_t, Entry> entries_;  // node-based: the hooks stay put
};

}  // namespace keel::cache::internal
