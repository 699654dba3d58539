// Several worker threads sending through one Dispatcher while the primary provider fails and
// recovers: every send gets exactly one answer, every provider call is accounted for, and the
// metrics add up. Run under TSan by `make check`.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

#include "case_studies/notification_system/dispatcher.h"

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;
using Kind = DispatchResult::Kind;

// Fails transiently while `failing` is set; counts calls.
class FlakyProvider final : public Provider {
 public:
  explicit FlakyProvider(std::string name) : name_(std::move(name)) {}
  std::string_view name() const noexcept override { return name_; }
  SendResult send(const Message&) override {
    calls.fetch_add(1);
    if (failing.load()) return {.outcome = SendOutcome::transient, .error = "down"};
    return {.outcome = SendOutcome::sent};
  }
  std::atomic<bool> failing{false};
  std::atomic<int> calls{0};

 private:
  std::string name_;
};

TEST(DispatcherConcurrencyTest, EverySendIsAnsweredOnceAndAccountedFor) {
  ManualClock clock;
  MetricsRegistry metrics;
  std::ostringstream console;
  auto primary = std::make_shared<FlakyProvider>("a");
  auto secondary = std::make_shared<FlakyProvider>("b");
  std::map<Channel, ChannelProviders> providers;
  providers[Channel::push] = {.primary = primary, .secondary = secondary};
  const auto dispatcher = make_dispatcher(std::move(providers), {.clock = &clock,
                                                                 .metrics = &metrics,
                                                                 .console = &console,
                                                                 .breaker_failure_threshold = 5,
                                                                 .breaker_open_timeout = 1s});

  constexpr int kThreads = 8;
  constexpr int kSendsPerThread = 2000;
  std::atomic<int> sent{0}, transient{0}, unavailable{0}, other{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kSendsPerThread; ++i) {
        // One thread plays the operator: the primary goes down, time passes, it comes back.
        if (t == 0 && i == 300) primary->failing = true;
        if (t == 0 && i % 100 == 0) clock.advance(250ms);
        if (t == 0 && i == 1200) primary->failing = false;
        const DispatchResult r = dispatcher->send({.delivery_id = fmt::format("{}-{}", t, i),
                                                   .channel = Channel::push,
                                                   .to = {.push_token = "tok"}});
        switch (r.kind) {
          case Kind::sent:
            ++sent;
            break;
          case Kind::transient:
            ++transient;
            break;
          case Kind::unavailable:
            ++unavailable;
            break;
          case Kind::permanent:
            ++other;
            break;
        }
      }
    });
  }
  for (auto& w : workers) w.join();

  EXPECT_EQ(sent + transient + unavailable + other, kThreads * kSendsPerThread);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(primary->calls + secondary->calls, sent + transient)
      << "each answered send called exactly one provider once";
  EXPECT_EQ(unavailable, 0) << "the secondary never fails, so its breaker never opens";
  EXPECT_GT(secondary->calls, 0) << "the primary's breaker opened while it was failing";
  const std::string page = metrics.render();
  EXPECT_NE(
      page.find(
          R"(keel_notifier_provider_sends_total{channel="push",outcome="sent",provider="b",role="secondary"})"),
      std::string::npos);
}

}  // namespace
}  // namespace keel::notifier
