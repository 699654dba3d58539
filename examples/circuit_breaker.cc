// Demo of keel/resilience: a circuit breaker in front of a flaky dependency that is healthy,
// then failing, then recovering, on a manual clock. Every call and every transition is printed;
// a fallback serves while the circuit is open; the timeline is drawn as an SVG.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/demo.h"
#include "keel/resilience.h"

namespace keel::demo {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace keel::resilience;

constexpr int kCalls = 70;  // one call per second

double seconds_since_start(const Clock& clock) {
  return std::chrono::duration<double>(clock.now() - TimePoint{}).count();
}

struct ServiceDown : std::runtime_error {
  ServiceDown() : std::runtime_error("503 from the price service") {}
};

// The dependency: healthy until 15 s, failing until 40 s, then recovering.
class FlakyPriceService {
 public:
  explicit FlakyPriceService(ManualClock& clock) : clock_(clock) {}
  double price(const std::string& sku) {
    const double t = seconds_since_start(clock_);
    const double failure_chance = t < 15 ? 0.05 : t < 40 ? 0.95 : 0.0;
    clock_.advance(milliseconds(t < 15 || t >= 40 ? 40 : 900));  // sick services are slow too
    if (uniform_(rng_) < failure_chance) throw ServiceDown();
    return 9.99 + static_cast<double>(sku.size());
  }

 private:
  ManualClock& clock_;
  std::mt19937 rng_{2026};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

enum class Outcome { ok, failed, rejected };

struct Sample {
  double t;
  Outcome outcome;
  CircuitState state;  // after the call
  double failure_rate;
};

std::filesystem::path write_svg(const std::vector<Sample>& samples,
                                const std::vector<std::pair<double, CircuitState>>& changes) {
  constexpr double kLeft = 60, kTop = 40, kW = 700, kH = 160, kBand = 24;
  const auto x = [&](double t) { return kLeft + kW * t / kCalls; };
  const auto y = [&](double rate) { return kTop + kBand + 20 + kH * (1 - rate / 100); };
  const auto color = [](CircuitState s) {
    return s == CircuitState::closed ? "#2ca02c" : s == CircuitState::open ? "#d62728" : "#ff7f0e";
  };
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)"
      "\n"
      R"(<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="14">Circuit breaker timeline: state, calls, failure rate (last 10 calls)</text>)"
      "\n",
      kLeft + kW + 190, kTop + kBand + kH + 80, kLeft);
  // The state band.
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const double from = changes[i].first;
    const double to = i + 1 < changes.size() ? changes[i + 1].first : kCalls;
    svg += fmt::format(R"(<rect x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="{}"/>)", x(from),
                       kTop, x(to) - x(from), kBand, color(changes[i].second)) +
           "\n";
  }
  // One tick per call, coloured by outcome.
  for (const Sample& s : samples) {
    const char* c = s.outcome == Outcome::ok       ? "#2ca02c"
                    : s.outcome == Outcome::failed ? "#d62728"
                                                   : "#aaaaaa";
    svg += fmt::format(R"(<circle cx="{:.1f}" cy="{}" r="3" fill="{}"/>)", x(s.t),
                       kTop + kBand + 10, c) +
           "\n";
  }
  // The breaker's failure rate: one segment per stretch where its window (cleared at every
  // transition) holds at least minimum_calls.
  std::string points;
  const auto flush = [&] {
    if (!points.empty()) {
      svg += fmt::format(R"(<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>)",
                         points) +
             "\n";
    }
    points.clear();
  };
  for (const Sample& s : samples) {
    if (s.failure_rate < 0) {
      flush();
    } else {
      points += fmt::format("{:.1f},{:.1f} ", x(s.t), y(s.failure_rate));
    }
  }
  flush();
  for (int rate = 0; rate <= 100; rate += 50) {
    svg += fmt::format(
        R"(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#eee"/><text x="{3}" y="{4:.1f}" text-anchor="end">{5}%</text>)"
        "\n",
        kLeft, y(rate), kLeft + kW, kLeft - 6, y(rate) + 4, rate);
  }
  for (int t = 0; t <= kCalls; t += 10) {
    svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{} s</text>)", x(t),
                       y(0) + 18, t) +
           "\n";
  }
  const std::array<std::pair<const char*, const char*>, 6> legend = {{
      {"#2ca02c", "closed / call ok"},
      {"#d62728", "open / call failed"},
      {"#ff7f0e", "half-open"},
      {"#aaaaaa", "rejected: fallback served"},
      {"#1f77b4", "failure rate (window)"},
      {"#ffffff", ""},
  }};
  for (std::size_t i = 0; i + 1 < legend.size(); ++i) {
    svg += fmt::format(
        R"(<rect x="{0}" y="{1}" width="10" height="10" fill="{2}"/><text x="{3}" y="{4}">{5}</text>)"
        "\n",
        kLeft + kW + 15, kTop + 18 * static_cast<double>(i), legend[i].first, kLeft + kW + 30,
        kTop + 9 + 18 * static_cast<double>(i), legend[i].second);
  }
  svg += "</svg>\n";
  return write_demo_file("keel-circuit-breaker.svg", svg);
}

// 100 clients see one failure at t = 0 and retry with exponential backoff: without jitter they
// all come back at the same instants; with full jitter they spread out.
void retry_storm() {
  heading("Retry storm: 100 clients retry after one shared failure (backoff 100 ms x2, 4 retries)");
  for (Jitter jitter : {Jitter::none, Jitter::full, Jitter::decorrelated}) {
    std::vector<int> per_slot(200, 0);  // 25 ms slots over 5 s
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int client = 0; client < 100; ++client) {
      Backoff backoff({.initial = milliseconds(100), .max_attempts = 5, .jitter = jitter},
                      [&] { return uniform(rng); });
      Duration at{};
      while (auto delay = backoff.next()) {
        at += *delay;
        const auto slot = static_cast<std::size_t>(at / milliseconds(25));
        if (slot < per_slot.size()) ++per_slot[slot];
      }
    }
    const int peak = *std::max_element(per_slot.begin(), per_slot.end());
    const auto busy = std::count_if(per_slot.begin(), per_slot.end(), [](int n) { return n > 0; });
    fmt::print(
        "  jitter {:<13} peak {:>3} retries in one 25 ms slot; retries spread over {:>3} slots\n",
        to_string(jitter), peak, busy);
  }
}

// The composition, in the order it runs: retry around the breaker around the bulkhead.
void composition(ManualClock& clock) {
  heading("decorate(fetch).with(retry).with(breaker).with(bulkhead): transient errors ridden out");
  int attempts = 0;
  const auto fetch = [&](const std::string& sku) {
    if (++attempts % 3 != 0) throw ServiceDown();  // two of three attempts fail
    return 9.99 + static_cast<double>(sku.size());
  };
  Retry retry({.name = "prices",
               .backoff = {.initial = milliseconds(50), .max_attempts = 3, .jitter = Jitter::none}},
              [&](Duration d) { clock.advance(d); });
  CircuitBreaker breaker({.name = "prices-composed", .failure_threshold = 5}, clock);
  Bulkhead bulkhead({.name = "prices", .max_concurrent_calls = 4}, clock);
  auto guarded = decorate(fetch).with(retry).with(breaker).with(bulkhead);
  for (int i = 0; i < 4; ++i) {
    const TimePoint start = clock.now();
    const double price = guarded(std::string("sku-42"));
    fmt::print("  request {}: price {:.2f} after {} ms of backoff\n", i + 1, price,
               std::chrono::duration_cast<milliseconds>(clock.now() - start).count());
  }
  const RetryMetrics r = retry.metrics();
  const CircuitBreakerMetrics b = breaker.metrics();
  fmt::print(
      "  retry: {} succeeded after retrying, {} retries; breaker: {} failures seen, still {}\n",
      r.succeeded_after_retry, r.retries, b.failures, to_string(b.state));
}

}  // namespace

void run_circuit_breaker_demo() {
  heading("A price service: healthy to 15 s, failing to 40 s, then recovering (one call a second)");
  ManualClock clock;
  FlakyPriceService service(clock);
  CircuitBreakerRegistry breakers({.failure_threshold = 3,
                                   .open_timeout = seconds(10),
                                   .half_open_max_calls = 1,
                                   .success_threshold = 2,
                                   .window_size = 10,
                                   .minimum_calls = 5,
                                   .failure_rate_threshold = 50.0,
                                   .slow_call_duration = milliseconds(500)},
                                  clock);
  CircuitBreaker& breaker = breakers.breaker("prices");
  MetricsRegistry metrics;
  Subscription exported = breakers.register_metrics(metrics);
  std::vector<std::pair<double, CircuitState>> changes{{0.0, CircuitState::closed}};
  std::vector<std::string> transitions;  // printed after the line of the call that caused them
  Subscription listener = breaker.on_state_change([&](CircuitState from, CircuitState to) {
    transitions.push_back(fmt::format("  t={:>5.1f} s  >>> {} -> {}\n", seconds_since_start(clock),
                                      to_string(from), to_string(to)));
    changes.emplace_back(seconds_since_start(clock), to);
  });

  std::vector<Sample> samples;
  double last_good_price = 0;
  for (int i = 0; i < kCalls; ++i) {
    clock.set(TimePoint{} + seconds(i));
    const double t = seconds_since_start(clock);
    Outcome outcome = Outcome::ok;
    try {
      last_good_price = breaker.call([&] { return service.price("sku-42"); });
      fmt::print("  t={:>5.1f} s  call {:>2}: ok, price {:.2f}\n", t, i + 1, last_good_price);
    } catch (const CircuitBreakerOpen& open) {
      outcome = Outcome::rejected;
      fmt::print("  t={:>5.1f} s  call {:>2}: not called ({}); fallback: cached price {:.2f}\n", t,
                 i + 1,
                 open.retry_after() > Duration::zero()
                     ? fmt::format("open, retry in {:.0f} s",
                                   std::chrono::duration<double>(open.retry_after()).count())
                     : std::string("trial in progress"),
                 last_good_price);
    } catch (const ServiceDown& e) {
      outcome = Outcome::failed;
      fmt::print("  t={:>5.1f} s  call {:>2}: FAILED ({})\n", t, i + 1, e.what());
    }
    for (const auto& line : transitions) fmt::print("{}", line);
    transitions.clear();
    const CircuitBreakerMetrics m = breaker.metrics();
    samples.push_back({t, outcome, m.state, m.failure_rate});
  }
  const CircuitBreakerMetrics m = breaker.metrics();
  fmt::print(
      "  totals: {} ok, {} failed, {} rejected (served from the fallback), {} slow, {} "
      "transitions\n",
      m.successes, m.failures, m.rejected, m.slow_calls, m.transitions);
  fmt::print("  timeline chart: {}\n", write_svg(samples, changes).string());
  heading("Prometheus text exposition of the breaker registry");
  fmt::print("{}", metrics.render());
  retry_storm();
  composition(clock);
}

}  // namespace keel::demo
