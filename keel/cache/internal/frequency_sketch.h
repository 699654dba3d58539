// A count-min sketch of 4-bit counters with periodic aging, the frequency filter of W-TinyLFU
// (not public). Four counters per key, one in each of four rows packed into 64-bit words; the
// estimate is the smallest. After `sample_size` increments every counter is halved, so old
// popularity fades (the "reset" of TinyLFU).
//
// Sizing follows Caffeine: one 64-bit word (16 counters, 4 per row) per cached entry, so that
// collisions stay rare even when the keys in the history outnumber the cache many times, and a
// history of 10 x capacity requests. Both are sized for at least kMinCapacity entries: a cache
// of 50 entries would otherwise forget everything older than 500 requests, and then a key that
// recurs every 1,000 requests (a loop twenty times the cache) looks as new as a one-hit wonder,
// so the admission filter cannot keep any of it. The floor costs 4 KiB per shard.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace keel::cache::internal {

class FrequencySketch {
 public:
  static constexpr std::size_t kMinCapacity = 512;

  // Sized for `capacity` entries (at least kMinCapacity): four counters per entry and row.
  explicit FrequencySketch(std::size_t capacity)
      : table_(std::bit_ceil(std::max(capacity, kMinCapacity)), 0),
        mask_(table_.size() - 1),
        sample_size_(10 * std::max(capacity, kMinCapacity)) {}

  // Increments between two agings.
  std::size_t sample_size() const noexcept { return sample_size_; }

  // Estimated accesses of `hash` (0-15).
  unsigned frequency(std::uint64_t hash) const noexcept {
    unsigned lowest = 15;
    for (unsigned row = 0; row < 4; ++row) {
      const auto [word, shift] = slot(hash, row);
      lowest = std::min(lowest, static_cast<unsigned>((table_[word] >> shift) & 0xF));
    }
    return lowest;
  }

  void increment(std::uint64_t hash) noexcept {
    bool added = false;
    for (unsigned row = 0; row < 4; ++row) {
      const auto [word, shift] = slot(hash, row);
      if (((table_[word] >> shift) & 0xF) != 0xF) {
        table_[word] += std::uint64_t{1} << shift;
        added = true;
      }
    }
    if (added && ++additions_ >= sample_size_) age();
  }

  void clear() noexcept {
    std::fill(table_.begin(), table_.end(), 0);
    additions_ = 0;
  }

 private:
  struct Slot {
    std::size_t word;
    unsigned shift;
  };
  // Row r takes its own 16 bits of a remixed hash: the word index, and which of the word's four
  // row-groups of four counters (r selects the group; the hash selects the counter in it).
  Slot slot(std::uint64_t hash, unsigned row) const noexcept {
    std::uint64_t h = (hash + kSeeds[row]) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    const std::size_t word = static_cast<std::size_t>(h >> 8) & mask_;
    const unsigned counter = static_cast<unsigned>(h & 3U);  // one of four in the row's group
    return {word, (row * 4 + counter) * 4};
  }
  void age() noexcept {
    for (auto& word : table_) word = (word >> 1) & 0x7777777777777777ULL;
    additions_ /= 2;
  }

  static constexpr std::uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ULL, 0xb492b66fbe98f273ULL,
                                              0x9ae16a3b2f90404fULL, 0xcbf29ce484222325ULL};
  std::vector<std::uint64_t> table_;
  std::size_t mask_;
  std::size_t sample_size_;
  std::size_t additions_ = 0;
};

}  // namespace keel::cache::internal
