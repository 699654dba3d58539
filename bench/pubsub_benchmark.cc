// keel/pubsub micro-benchmarks: the cost of finding the subscriptions that match one published
// topic, with 1, 1,000 and 100,000 subscriptions in the TopicTrie (flat: it grows with the
// topic's length and the number of matches), and a linear scan with topic_matches for contrast.
// Run: build/release/bench/keel_pubsub_benchmark
#include <benchmark/benchmark.h>

#include <fmt/format.h>
#include <atomic>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keel/pubsub/event_bus.h"
#include "keel/pubsub/internal/topic_trie.h"
#include "keel/pubsub/topic.h"

namespace keel::pubsub {
namespace {

using internal::TopicTrie;

// `count` subscription patterns: from 1,000 on, 100 with '#' (#.audit{j} and svc{j}.#, j < 50);
// the rest alternate svc{n}.* and svc{n}.created for n = 42, 43, ... so that even the single
// subscription of count = 1 is one that svc42.created reaches.
std::vector<std::string> patterns(int count) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(count));
  const int hashes = count >= 1000 ? 100 : 0;
  for (int j = 0; j < hashes / 2; ++j) {
    out.push_back(fmt::format("#.audit{}", j));
    out.push_back(fmt::format("svc{}.#", j));
  }
  for (int i = 0; i < count - hashes; ++i) {
    out.push_back(fmt::format("svc{}.{}", 42 + i / 2, i % 2 == 0 ? "*" : "created"));
  }
  return out;
}

const std::vector<std::string>& cached_patterns(int count) {
  static std::map<int, std::vector<std::string>> cache;
  auto [it, inserted] = cache.try_emplace(count);
  if (inserted) it->second = patterns(count);
  return it->second;
}

const TopicTrie& cached_trie(int count) {
  static std::map<int, std::unique_ptr<TopicTrie>> cache;
  std::unique_ptr<TopicTrie>& trie = cache[count];
  if (!trie) {
    trie = std::make_unique<TopicTrie>();
    const std::vector<std::string>& all = cached_patterns(count);
    for (std::size_t id = 0; id < all.size(); ++id) trie->insert(all[id], id);
  }
  return *trie;
}

// A hit on two tokens, a hit through '#' patterns, a miss, and a longer topic.
constexpr const char* kTopics[] = {"svc42.created", "svc42.created.audit7", "nosuch.topic",
                                   "svc42.eu.west.orders.created.v2.batch.audit7"};

void BM_TrieMatch(benchmark::State& state) {
  const TopicTrie& trie = cached_trie(static_cast<int>(state.range(0)));
  const char* topic = kTopics[state.range(1)];
  std::vector<TopicTrie::Id> out;
  for (auto _ : state) {
    trie.match(topic, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["matches"] = static_cast<double>(out.size());
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(topic);
}
BENCHMARK(BM_TrieMatch)->ArgsProduct({{1, 1'000, 100'000}, {0, 1, 2, 3}});

// What the trie saves: every subscription's pattern checked in turn (each check validates and
// splits both strings, as topic_matches does for a caller without a trie).
void BM_LinearScan(benchmark::State& state) {
  const std::vector<std::string>& all = cached_patterns(static_cast<int>(state.range(0)));
  const char* topic = kTopics[0];
  std::size_t matches = 0;
  for (auto _ : state) {
    matches = 0;
    for (const std::string& pattern : all) matches += topic_matches(pattern, topic) ? 1U : 0U;
    benchmark::DoNotOptimize(matches);
  }
  state.counters["matches"] = static_cast<double>(matches);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(topic);
}
BENCHMARK(BM_LinearScan)->Arg(1)->Arg(1'000)->Arg(100'000)->Unit(benchmark::kMicrosecond);

// The whole bus: 10,000 services with `svc{i}.*` and `svc{i}.created` subscriptions (20,000) and
// 100 `#`-style ones, trivial handlers; each publish of `svc{i}.created` reaches 2 of the services'
// subscriptions plus the matching `#` ones. Synchronous delivery, or asynchronous on 2 workers
// (then timed until the queues are drained).
void BM_BusPublish(benchmark::State& state) {
  const bool async = state.range(0) == 1;
  EventBus bus({.delivery = async ? Delivery::asynchronous : Delivery::synchronous, .workers = 2});
  std::atomic<std::uint64_t> handled{0};
  std::vector<Subscription> subs;
  const auto count = [&handled](const Message&) {
    handled.fetch_add(1, std::memory_order_relaxed);
  };
  for (int i = 0; i < 10'000; ++i) {
    subs.push_back(bus.subscribe(fmt::format("svc{}.*", i), count, {.queue_capacity = 1 << 16}));
    subs.push_back(
        bus.subscribe(fmt::format("svc{}.created", i), count, {.queue_capacity = 1 << 16}));
  }
  for (int j = 0; j < 100; ++j) {
    subs.push_back(
        bus.subscribe(fmt::format("svc{}.#", j * 97), count, {.queue_capacity = 1 << 16}));
  }
  std::vector<std::string> topics;
  for (int i = 0; i < 1024; ++i)
    topics.push_back(fmt::format("svc{}.created", (i * 7919) % 10'000));
  std::size_t i = 0;
  for (auto _ : state) bus.publish(topics[i++ & 1023], "payload");
  bus.flush();
  state.SetItemsProcessed(state.iterations());
  state.counters["deliveries_per_s"] =
      benchmark::Counter(static_cast<double>(handled.load()), benchmark::Counter::kIsRate);
  state.SetLabel(async ? "asynchronous, 2 workers" : "synchronous");
}
BENCHMARK(BM_BusPublish)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace keel::pubsub

BENCHMARK_MAIN();
