// Demo of keel/core: time is injected, so a minute of retries runs in microseconds and prints the
// same every time.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <random>

#include "examples/demo.h"
#include "keel/core.h"

namespace keel::demo {
namespace {

using std::chrono::milliseconds;

std::string ms(Duration d) {
  return fmt::format("{:>7.1f} ms", std::chrono::duration<double, std::milli>(d).count());
}

double since_ms(const Clock& clock) {
  return std::chrono::duration<double, std::milli>(clock.now() - TimePoint{}).count();
}

void backoff_table() {
  heading("Backoff: delays before each retry (initial 100 ms, x2, cap 2 s, seeded random)");
  const BackoffPolicy base{.initial = milliseconds(100),
                           .multiplier = 2.0,
                           .max_delay = std::chrono::seconds(2),
                           .max_attempts = 8};
  fmt::print("{:<14}", "jitter");
  for (int r = 1; r <= 7; ++r) fmt::print("{:>11}", fmt::format("retry {}", r));
  fmt::print("\n");
  for (Jitter jitter : {Jitter::none, Jitter::full, Jitter::equal, Jitter::decorrelated}) {
    auto policy = base;
    policy.jitter = jitter;
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    Backoff backoff(policy, [&] { return uniform(rng); });
    fmt::print("{:<14}", to_string(jitter));
    while (auto d = backoff.next()) fmt::print("{:>11}", ms(*d));
    fmt::print("\n");
  }
}

void scheduler_timeline(MetricsRegistry& registry) {
  heading("Scheduler on a ManualClock: a flaky call retried with backoff, a timeout cancelled");
  ManualClock clock;
  ManualScheduler scheduler(clock);
  auto& attempts = registry.counter("demo_call_attempts_total", "Calls made to the flaky service");
  auto& outcome =
      registry.counter("demo_calls_total", "Finished calls by outcome", {{"outcome", "success"}});
  auto& latency =
      registry.histogram("demo_call_seconds", "Time from first try to success", {0.1, 0.5, 1, 2.5});
  Backoff backoff(
      BackoffPolicy{.initial = milliseconds(200), .max_attempts = 5, .jitter = Jitter::none});
  const TimePoint started = clock.now();
  int failures_left = 3;  // the service fails three times, then recovers

  TaskHandle timeout = scheduler.schedule_after(std::chrono::seconds(5), [&] {
    fmt::print("  t={:>7.1f} ms  timeout fired (should not happen)\n", since_ms(clock));
  });
  std::function<void()> call = [&] {
    attempts.inc();
    if (failures_left-- > 0) {
      auto delay = backoff.next();
      fmt::print("  t={:>7.1f} ms  attempt {} failed; retry in {}\n", since_ms(clock),
                 backoff.retries(), ms(*delay));
      scheduler.schedule_after(*delay, call);
      return;
    }
    outcome.inc();
    latency.observe(clock.now() - started);
    fmt::print("  t={:>7.1f} ms  attempt {} succeeded; timeout cancelled: {}\n", since_ms(clock),
               backoff.retries() + 1, timeout.cancel());
  };
  scheduler.schedule_after(Duration::zero(), call);
  fmt::print("  advancing the clock by one minute in a single call...\n");
  clock.advance(std::chrono::minutes(1));
  const auto stats = scheduler.stats();
  fmt::print("  scheduler: {} scheduled, {} executed, {} cancelled, {} pending\n", stats.scheduled,
             stats.executed, stats.cancelled, stats.pending);
}

void thread_pool_run() {
  heading("ThreadPoolScheduler: the same API on real time (2 workers)");
  ThreadPoolScheduler pool(2);
  std::atomic<int> ran{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) pool.schedule_after(milliseconds(i % 20), [&] { ++ran; });
  pool.shutdown(ShutdownMode::drain);
  fmt::print("  1000 tasks due within 20 ms drained in {}; ran {}\n",
             ms(std::chrono::steady_clock::now() - start), ran.load());
}

}  // namespace

void run_core_demo() {
  MetricsRegistry registry;
  backoff_table();
  scheduler_timeline(registry);
  thread_pool_run();
  heading("Base62 and digests");
  for (std::uint64_t v : {0ULL, 61ULL, 62ULL, 3'521'614'606'207ULL}) {
    fmt::print("  {:>16} -> {:>8} (7 wide: {})\n", v, base62_encode(v),
               v < 3'521'614'606'208ULL ? base62_encode(v, 7) : "too wide");
  }
  fmt::print("  sha256(\"keel\") = {}\n", sha256_hex("keel"));
  heading("Prometheus text exposition (what /metrics serves)");
  fmt::print("{}", registry.render());
}

}  // namespace keel::demo
