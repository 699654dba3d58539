// decorate(f).with(...): fake layers pin the order and the pass-through; the real Retry,
// CircuitBreaker and Bulkhead show what the order means.
#include "keel/resilience/decorate.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/resilience/bulkhead.h"
#include "keel/resilience/circuit_breaker.h"
#include "keel/resilience/retry.h"

namespace keel::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A layer that writes "<name> in" and "<name> out" around the call it wraps.
struct Recorder {
  std::string name;
  std::vector<std::string>* log;

  template <class F, class... Args>
  decltype(auto) call(F&& f, Args&&... args) {
    log->push_back(name + " in");
    struct Out {
      Recorder& layer;
      ~Out() { layer.log->push_back(layer.name + " out"); }
    } out{*this};
    return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  }
};

TEST(DecorateTest, LayersRunInTheOrderOfWithTheFirstOutermost) {
  std::vector<std::string> log;
  Recorder retry{"retry", &log}, breaker{"breaker", &log}, bulkhead{"bulkhead", &log};
  auto guarded = decorate([&](int sku) {
                   log.push_back("fetch " + std::to_string(sku));
                   return sku * 2;
                 })
                     .with(retry)
                     .with(breaker)
                     .with(bulkhead);
  EXPECT_EQ(guarded(21), 42);
  EXPECT_EQ(log, (std::vector<std::string>{"retry in", "breaker in", "bulkhead in", "fetch 21",
                                           "bulkhead out", "breaker out", "retry out"}));
}

TEST(DecorateTest, ArgumentsAndResultsPassThroughUnchanged) {
  std::vector<std::string> log;
  Recorder outer{"outer", &log}, inner{"inner", &log};

  auto take = decorate([](std::unique_ptr<int> p) { return p; }).with(outer).with(inner);
  auto owned = take(std::make_unique<int>(7));
  ASSERT_NE(owned, nullptr) << "move-only arguments and results go through";
  EXPECT_EQ(*owned, 7);

  int stock = 3;
  auto find = decorate([](int& s) -> int& { return s; }).with(outer).with(inner);
  EXPECT_EQ(&find(stock), &stock) << "a reference result is the same reference";

  void (*noop)() = [] {};
  decorate(noop).with(outer)();
}

TEST(DecorateTest, AMutableCallableKeepsItsState) {
  std::vector<std::string> log;
  Recorder layer{"layer", &log};
  auto next_id = decorate([n = 0]() mutable { return ++n; }).with(layer);
  EXPECT_EQ(next_id(), 1);
  EXPECT_EQ(next_id(), 2);
}

TEST(DecorateTest, CopiesShareTheLayersAndExtendingLeavesTheOriginal) {
  std::vector<std::string> log;
  Recorder a{"a", &log}, b{"b", &log};
  const auto with_a = decorate([] { return 1; }).with(a);
  const auto with_ab = with_a.with(b);
  auto copy = with_a;
  with_a();
  copy();
  with_ab();
  EXPECT_EQ(log, (std::vector<std::string>{"a in", "a out", "a in", "a out", "a in", "b in",
                                           "b out", "a out"}));
}

template <class Layer>
concept AcceptedAsLayer = requires(Decorated<int (*)()> d, Layer&& layer) {
  d.with(std::forward<Layer>(layer));
};
static_assert(AcceptedAsLayer<Recorder&>);
static_assert(!AcceptedAsLayer<Recorder>, "a temporary layer would dangle");
static_assert(!AcceptedAsLayer<const Recorder>, "a temporary layer would dangle");

// The real layers. The sleeper advances the clock the breaker reads, as time would pass.
struct RealLayers {
  ManualClock clock;
  Retry retry{{.name = "fetch",
               .backoff = {.initial = milliseconds(10),
                           .multiplier = 2.0,
                           .max_delay = seconds(1),
                           .max_attempts = 5,
                           .jitter = Jitter::none}},
              [this](Duration d) { clock.advance(d); }};
  CircuitBreaker breaker{{.name = "inventory", .failure_threshold = 2}, clock};
  Bulkhead bulkhead{{.name = "inventory", .max_concurrent_calls = 1}, clock};
};

TEST(DecorateTest, RetryAroundABreakerStopsRetryingOnceTheBreakerOpens) {
  RealLayers layers;
  int calls = 0;
  auto guarded = decorate([&]() -> int {
                   ++calls;
                   throw std::runtime_error("inventory down");
                 })
                     .with(layers.retry)
                     .with(layers.breaker);
  EXPECT_THROW(guarded(), CircuitBreakerOpen);
  EXPECT_EQ(calls, 2) << "two failures open the breaker; the third attempt is refused by it";
  EXPECT_EQ(layers.breaker.state(), CircuitState::open);
  const RetryMetrics m = layers.retry.metrics();
  EXPECT_EQ(m.retries, 2u) << "CircuitBreakerOpen itself is not retried";
  EXPECT_EQ(m.failed_after_retries, 1u);
}

TEST(DecorateTest, OnlyCallsTheBreakerLetsThroughTakeABulkheadSlot) {
  RealLayers layers;
  int calls = 0;
  auto guarded = decorate([&](const std::string& sku) {
                   ++calls;
                   return sku + " in stock";
                 })
                     .with(layers.retry)
                     .with(layers.breaker)
                     .with(layers.bulkhead);
  EXPECT_EQ(guarded(std::string("sku-1")), "sku-1 in stock");
  EXPECT_EQ(layers.bulkhead.metrics().admitted, 1u);

  layers.breaker.force_open();
  EXPECT_THROW(guarded(std::string("sku-2")), CircuitBreakerOpen);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(layers.bulkhead.metrics().admitted, 1u) << "a refused call never reached the bulkhead";
  EXPECT_EQ(layers.bulkhead.metrics().rejected, 0u);
}

TEST(DecorateTest, ARetriedCallGetsItsArgumentsIntactThroughEveryLayer) {
  RealLayers layers;
  std::vector<std::string> seen;
  auto guarded = decorate([&](std::string body) {
                   seen.push_back(body);
                   if (seen.size() < 2) throw std::runtime_error("again");
                   return body.size();
                 })
                     .with(layers.retry)
                     .with(layers.breaker)
                     .with(layers.bulkhead);
  EXPECT_EQ(guarded(std::string(32, 'x')), 32u);
  EXPECT_EQ(seen, std::vector<std::string>(2, std::string(32, 'x')));
  EXPECT_EQ(layers.bulkhead.metrics().in_flight, 0);
}

}  // namespace
}  // namespace keel::resilience
