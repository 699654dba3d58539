// The frequency sketch and the admission filter of W-TinyLFU, driven directly (no cache around
// them), so each test pins one decision.
#include "keel/cache/internal/tiny_lfu_policy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "keel/cache/internal/frequency_sketch.h"
#include "keel/cache/internal/lru_shadow.h"
#include "keel/cache/internal/sharded_cache.h"

namespace keel::cache::internal {
namespace {

std::uint64_t key_hash(std::uint64_t key) { return mix(key); }

// A cache of 10 entries would age its history every 100 requests; the floor keeps thousands, so
// a key that comes back every 1,000 requests is still known when it does.
TEST(FrequencySketchTest, ATinyCachesSketchRemembersThousandsOfRequests) {
  FrequencySketch sketch(10);
  EXPECT_GE(sketch.sample_size(), 5000U);
  sketch.increment(key_hash(7));
  for (std::uint64_t other = 1000; other < 5000; ++other) sketch.increment(key_hash(other));
  EXPECT_GE(sketch.frequency(key_hash(7)), 1U) << "one request 4,000 requests ago, not aged away";
}

// Other keys may share a counter with key 1 and raise its estimate a little; halving still
// takes it from at least 8 to at most 7.
TEST(FrequencySketchTest, AgingHalvesTheCountsAfterSampleSizeIncrements) {
  FrequencySketch sketch(10);
  for (int i = 0; i < 8; ++i) sketch.increment(key_hash(1));
  std::uint64_t other = 1000;
  while (other - 1000 + 8 < sketch.sample_size() - 1) sketch.increment(key_hash(other++));
  EXPECT_GE(sketch.frequency(key_hash(1)), 8U) << "one increment before aging";
  sketch.increment(key_hash(other));
  EXPECT_GE(sketch.frequency(key_hash(1)), 4U);
  EXPECT_LE(sketch.frequency(key_hash(1)), 7U) << "halved";
}

TEST(LruShadowTest, UpToItsMaximumItFollowsEveryKeyAsAnExactLru) {
  LruShadow lru(2);
  EXPECT_EQ(lru.rate(), 1U);
  EXPECT_TRUE(lru.sampled(key_hash(12345)));
  EXPECT_FALSE(lru.request(1));
  EXPECT_FALSE(lru.request(2));
  EXPECT_TRUE(lru.request(1)) << "1 is now the most recent";
  EXPECT_FALSE(lru.request(3)) << "evicts 2, the least recent";
  EXPECT_FALSE(lru.request(2));
  EXPECT_FALSE(lru.request(1)) << "evicted by 2";
}

TEST(LruShadowTest, ABiggerCacheIsFollowedOnASampleOfTheKeys) {
  LruShadow lru(4 * LruShadow::kMaxEntries);
  EXPECT_EQ(lru.rate(), 4U);
  int sampled = 0;
  for (std::uint64_t key = 0; key < 40'000; ++key) sampled += lru.sampled(key_hash(key)) ? 1 : 0;
  EXPECT_NEAR(sampled, 10'000, 400) << "one key in 4";
}

// A policy of 100 entries (window of 1) holding keys 0..99, each asked once; key 0 is the main
// region's least recent entry, the victim for the next candidate.
class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() : nodes_(200) {
    for (std::uint64_t key = 0; key < 100; ++key) EXPECT_EQ(ask_new(key), nullptr);
  }

  // A request for a key not in the cache, which is then inserted. Returns the evicted node.
  TinyLfuPolicy::Node* ask_new(std::uint64_t key) {
    policy_.record_miss(key_hash(key));
    return policy_.insert(&nodes_[key], key_hash(key));
  }
  // Requests of a key that count in the sketch only (it was asked before, then evicted).
  void asked_before(std::uint64_t key, int times) {
    for (int i = 0; i < times; ++i) policy_.record_miss(key_hash(key));
  }
  // Makes `key` the next candidate (the window's only entry), then pushes it out with a new key;
  // returns the node evicted by that push.
  TinyLfuPolicy::Node* offer(std::uint64_t key) {
    ask_new(key);
    return ask_new(key + 1);
  }

  TinyLfuPolicy policy_{100};
  std::vector<TinyLfuPolicy::Node> nodes_;
};

// The victim (key 0) was asked once. A candidate asked twice is one ahead only because of its
// latest request, which is what brought it in: on a loop every newcomer is in that position.
TEST_F(AdmissionTest, ACandidateAheadOnlyByItsLatestRequestIsRejected) {
  ask_new(100);  // key 99 leaves the window; as often asked as the victim, it is rejected
  asked_before(150, 1);
  EXPECT_EQ(offer(150), &nodes_[150]) << "the candidate is evicted, the resident stays";
}

TEST_F(AdmissionTest, ACandidateAskedMoreOftenThanTheVictimBeforeItsLatestRequestIsAdmitted) {
  ask_new(100);
  asked_before(150, 2);
  EXPECT_EQ(offer(150), &nodes_[0]) << "the victim is evicted for the candidate";
}

TEST_F(AdmissionTest, AOneHitWonderNeverDisplacesAResident) {
  EXPECT_EQ(ask_new(100), &nodes_[99]);
  EXPECT_EQ(ask_new(101), &nodes_[100]);
}

}  // namespace
}  // namespace keel::cache::internal
