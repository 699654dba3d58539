// W-TinyLFU for one shard (not public), after Einziger, Friedman and Manes, "TinyLFU: A Highly
// Efficient Cache Admission Policy" (2017) and Caffeine's implementation:
//
//   new entries -> [window LRU] --evicted--> admission filter --admitted--> [main SLRU]
//                                  freq(candidate) - 1 > freq(victim of probation)?
//   main SLRU = probation (20 %) + protected (80 %); a hit in probation promotes to protected,
//   the protected overflow falls back to probation.
//
// Frequencies come from a count-min sketch with aging (frequency_sketch.h). The candidate's
// estimate is taken without its latest request (see admit()). The window's share of the capacity
// starts at 1 % and is tuned by hill climbing: every sample of 2 x capacity requests (counted
// once the cache is full), the window moves by a step in the direction that last improved the
// score (reversing when it got worse; the step decays by 2 % per sample and restarts at 6.25 % of
// the capacity when the score jumps by 5 points). A large window makes the policy behave like
// LRU on recency-heavy workloads; a small one favours frequency.
//
// The score is the hit rate minus the hit rate that plain LRU gets on the same requests
// (lru_shadow.h, a sampled LRU of hashes); Caffeine climbs on the raw hit rate. Consecutive samples
// of a real workload differ in how cacheable they are far more than two neighbouring window sizes
// differ: on the sprite trace the hit rate swings between 20 % and 90 % from one sample to the
// next, so a climber comparing raw hit rates follows the workload, not the window, and walks at
// random. LRU sees the same swings, so the difference cancels most of them (LRU serves as a control
// variate).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "keel/cache/internal/frequency_sketch.h"
#include "keel/cache/internal/lru_shadow.h"
#include "keel/core/internal/intrusive_list.h"

namespace keel::cache::internal {

using keel::internal::Hook;
using keel::internal::HookList;

class TinyLfuPolicy {
 public:
  enum class Region : std::uint8_t { window, probation, protected_ };
  struct Node : Hook {
    std::uint64_t hash = 0;
    Region region = Region::window;
  };

  explicit TinyLfuPolicy(std::size_t capacity)
      : capacity_(capacity),
        sketch_(capacity),
        lru_(capacity),
        window_max_(std::max<std::size_t>(1, capacity / 100)),
        step_(-kStepPercent * static_cast<double>(capacity)) {
    if (capacity_ < 2) window_max_ = capacity_;  // one entry: the window is the cache
  }

  void record_miss(std::uint64_t hash) {
    sketch_.increment(hash);
    count_request(hash, false);
    climb();
  }

  void record_hit(Node* node) {
    sketch_.increment(node->hash);
    count_request(node->hash, true);
    touch(node);
    climb();
  }

  void update(Node* node) noexcept { touch(node); }

  // A new entry enters the window; returns the entry to evict (possibly `node` itself, when the
  // filter prefers the main region's victim), or nullptr.
  Node* insert(Node* node, std::uint64_t hash) noexcept {
    node->hash = hash;
    node->region = Region::window;
    window_.push_front(node);
    return rebalance();
  }

  void remove(Node* node) noexcept { list(node->region).remove(node); }

  void clear() noexcept {
    window_.clear();
    probation_.clear();
    protected_.clear();
    sketch_.clear();
    lru_.clear();
  }

  std::size_t window_capacity() const noexcept { return window_max_; }

 private:
  static constexpr std::uint64_t kSampleMultiplier = 2;
  static constexpr double kStepPercent = 0.0625;
  static constexpr double kStepDecay = 0.98;
  static constexpr double kRestartThreshold = 0.05;

  HookList& list(Region region) noexcept {
    return region == Region::window      ? window_
           : region == Region::probation ? probation_
                                         : protected_;
  }
  std::size_t main_max() const noexcept { return capacity_ - window_max_; }
  std::size_t protected_max() const noexcept { return main_max() * 4 / 5; }
  std::size_t size() const noexcept {
    return window_.size() + probation_.size() + protected_.size();
  }
  static Node* as_node(Hook* h) noexcept { return static_cast<Node*>(h); }

  void touch(Node* node) noexcept {
    switch (node->region) {
      case Region::window:
        window_.move_to_front(node);
        break;
      case Region::probation:  // promoted; the protected overflow falls back to probation
        probation_.remove(node);
        node->region = Region::protected_;
        protected_.push_front(node);
        demote_protected_overflow();
        break;
      case Region::protected_:
        protected_.move_to_front(node);
        break;
    }
  }

  void demote_protected_overflow() noexcept {
    while (protected_.size() > protected_max()) {
      Node* demoted = as_node(protected_.back());
      protected_.remove(demoted);
      demoted->region = Region::probation;
      probation_.push_front(demoted);
    }
  }

  // Moves the window's overflow to the main region, where each candidate must beat the main
  // region's least recent entry to stay. Returns the one entry to evict, if any.
  Node* rebalance() noexcept {
    while (window_.size() > window_max_) {
      Node* candidate = as_node(window_.back());
      window_.remove(candidate);
      candidate->region = Region::probation;
      probation_.push_front(candidate);
    }
    if (size() <= capacity_) return nullptr;
    // Over capacity by one: the newest probation entry (the last candidate from the window)
    // against the least recent entry of the main region.
    Node* candidate = as_node(probation_.front());
    if (candidate == nullptr) return as_node(window_.back());  // all in the window (capacity 1)
    Hook* victim_hook = probation_.back() != candidate ? probation_.back() : protected_.back();
    if (victim_hook == nullptr) return candidate;
    Node* victim = as_node(victim_hook);
    return admit(candidate->hash, victim->hash) ? victim : candidate;
  }

  // The filter compares the two keys' histories *before* the candidate's latest request: that
  // request is the reason the candidate is in the cache at all, and the victim would have earned
  // the same one had it been asked for now. Counting it gives every newcomer a head start of one,
  // and on cyclic patterns (loops, back-and-forth sweeps), where all keys recur equally often,
  // that head start alone lets each newcomer displace a resident that simply has not come round
  // yet in the cycle: the main region then churns and keeps nothing until its next use. Ties keep
  // the resident (as in Caffeine).
  bool admit(std::uint64_t candidate, std::uint64_t victim) const noexcept {
    return sketch_.frequency(candidate) > sketch_.frequency(victim) + 1;
  }

  // Counts a request towards the climber's sample: for sampled keys, whether this policy and
  // the shadow LRU hit.
  void count_request(std::uint64_t hash, bool hit) {
    ++sample_.requests;
    if (!lru_.sampled(hash)) return;
    ++sample_.paired;
    sample_.hits += hit ? 1U : 0U;
    sample_.lru_hits += lru_.request(hash) ? 1U : 0U;
  }

  // Hill climbing on the window size (Caffeine's climber, on the score described above).
  void climb() noexcept {
    if (capacity_ < 2 || sample_.requests < kSampleMultiplier * capacity_) return;
    const Sample sample = std::exchange(sample_, Sample{});
    // Still warming up, or no sampled key asked: the sample says nothing about the window.
    if (size() < capacity_ || sample.paired == 0) return;
    const double score = (static_cast<double>(sample.hits) - static_cast<double>(sample.lru_hits)) /
                         static_cast<double>(sample.paired);
    const double change = score - previous_score_;
    const double amount = change >= 0 ? step_ : -step_;
    step_ = std::abs(change) >= kRestartThreshold
                ? kStepPercent * static_cast<double>(capacity_) * (amount >= 0 ? 1 : -1)
                : kStepDecay * amount;
    previous_score_ = score;
    resize_window(amount);
  }

  void resize_window(double amount) noexcept {
    const auto delta = static_cast<long long>(std::llround(amount));
    const auto current = static_cast<long long>(window_max_);
    const long long target =
        std::clamp(current + delta, 1LL, static_cast<long long>(capacity_) - 1);
    window_max_ = static_cast<std::size_t>(target);
    // A smaller window: its overflow moves to probation (the total does not change). A larger
    // one: the main region's least recent entries move into the window.
    while (window_.size() > window_max_) {
      Node* moved = as_node(window_.back());
      window_.remove(moved);
      moved->region = Region::probation;
      probation_.push_front(moved);
    }
    while (probation_.size() + protected_.size() > main_max()) {
      HookList& from = !probation_.empty() ? probation_ : protected_;
      Node* moved = as_node(from.back());
      from.remove(moved);
      moved->region = Region::window;
      window_.push_back_oldest(moved);
    }
    demote_protected_overflow();
  }

  struct Sample {
    std::uint64_t requests = 0;  // all of them: the sample's length
    std::uint64_t paired = 0;    // those for keys that the shadow LRU follows
    std::uint64_t hits = 0;      // this policy's hits among the paired ones
    std::uint64_t lru_hits = 0;  // the shadow LRU's hits among the paired ones
  };

  std::size_t capacity_;
  FrequencySketch sketch_;
  LruShadow lru_;
  std::size_t window_max_;
  HookList window_, probation_, protected_;
  double step_;
  double previous_score_ = 0;
  Sample sample_;
};

}  // namespace keel::cache::internal
