// W-TinyLFU for one shard (not public), after Einziger, Friedman and Manes, "TinyLFU: A Highly
// Efficient Cache Admission Policy" (2017) and Caffeine's implementation:
//
//   new entries -> [window LRU] --evicted--> admission filter --admitted--> [main SLRU]
//                                              freq(candidate) > freq(victim of probation)?
//   main SLRU = probation (20 %) + protected (80 %); a hit in probation promotes to protected,
//   the protected overflow falls back to probation.
//
// Frequencies come from a count-min sketch with aging. The window's share of the capacity starts
// at 1 % and is tuned by hill climbing on the hit rate: every sample of 10 x capacity requests,
// the window moves by a step in the direction that last improved the hit rate (reversing when it
// got worse; the step decays by 2 % per sample and restarts at 6.25 % of the capacity when the
// hit rate jumps by 5 points). A large window makes the policy behave like LRU on recency-heavy
// workloads; a small one favours frequency.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "keel/cache/internal/frequency_sketch.h"
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
        window_max_(std::max<std::size_t>(1, capacity / 100)),
        step_(-kStepPercent * static_cast<double>(capacity)) {
    if (capacity_ < 2) window_max_ = capacity_;  // one entry: the window is the cache
  }

  void record_miss(std::uint64_t hash) noexcept {
    sketch_.increment(hash);
    ++sample_misses_;
    climb();
  }

  void record_hit(Node* node) noexcept {
    sketch_.increment(node->hash);
    ++sample_hits_;
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
    return sketch_.frequency(candidate->hash) > sketch_.frequency(victim->hash) ? victim
                                                                                : candidate;
  }

  // Hill climbing on the window size (Caffeine's climber).
  void climb() noexcept {
    const std::uint64_t requests = sample_hits_ + sample_misses_;
    if (capacity_ < 2 || requests < kSampleMultiplier * capacity_) return;
    if (size() < capacity_) {  // still warming up: the hit rate says nothing about the window
      sample_hits_ = sample_misses_ = 0;
      return;
    }
    const double hit_rate = static_cast<double>(sample_hits_) / static_cast<double>(requests);
    const double change = hit_rate - previous_hit_rate_;
    const double amount = change >= 0 ? step_ : -step_;
    step_ = std::abs(change) >= kRestartThreshold
                ? kStepPercent * static_cast<double>(capacity_) * (amount >= 0 ? 1 : -1)
                : kStepDecay * amount;
    previous_hit_rate_ = hit_rate;
    sample_hits_ = sample_misses_ = 0;
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

  std::size_t capacity_;
  FrequencySketch sketch_;
  std::size_t window_max_;
  HookList window_, probation_, protected_;
  double step_;
  double previous_hit_rate_ = 0;
  std::uint64_t sample_hits_ = 0;
  std::uint64_t sample_misses_ = 0;
};

}  // namespace keel::cache::internal
