// Demo of keel/ratelimit: the README's token bucket under a burst, then the six algorithms fed
// the same bursty traffic on a manual clock, as a table and as an SVG chart.
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "examples/demo.h"
#include "keel/ratelimit.h"

namespace keel::demo {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace keel::ratelimit;

constexpr Duration kTick = milliseconds(100);
constexpr int kTicks = 120;  // 12 simulated seconds

void readme_example() {
  heading("TokenBucket limiter(10, 50): a burst of 80, then 20 requests/s for 3 s");
  ManualClock clock;
  TokenBucket limiter(10, 50, clock);
  int processed = 0, rejected = 0;
  for (int i = 0; i < 80; ++i) (limiter.allow() ? processed : rejected)++;
  fmt::print("  burst at t=0: {} processed, {} rejected (429)\n", processed, rejected);
  for (int second = 1; second <= 3; ++second) {
    processed = rejected = 0;
    for (int i = 0; i < 20; ++i) {
      clock.advance(milliseconds(50));
      (limiter.allow() ? processed : rejected)++;
    }
    fmt::print("  second {}: {} processed, {} rejected: the sustained rate is 10/s\n", second,
               processed, rejected);
  }
  const Decision denied = limiter.try_acquire();
  fmt::print("  a denied decision as HTTP headers:\n");
  for (const auto& [name, value] :
       rate_limit_headers(denied, {.policy = "default", .window = seconds(5)})) {
    fmt::print("    {}: {}\n", name, value);
  }
}

// Requests arriving in each 100 ms tick: quiet, a burst, twice the rate, a burst straddling a
// window boundary, then exactly the rate.
std::vector<int> traffic() {
  std::vector<int> offered(kTicks, 0);
  offered[20] = 40;                                      // t = 2.0 s: a burst of 40
  for (std::size_t t = 30; t < 60; ++t) offered[t] = 2;  // 3-6 s: 20/s, twice the rate
  offered[79] = 15;                                      // t = 7.9 s: 15 just before a boundary
  offered[80] = 15;                                      // t = 8.0 s: 15 just after it
  for (std::size_t t = 90; t < offered.size(); ++t)
    offered[t] = 1;  // 9-12 s: 10/s, exactly the rate
  return offered;
}

struct Run {
  std::string name;
  std::vector<int> admitted;  // per tick
};

std::vector<Run> simulate(const std::vector<int>& offered) {
  const std::array<std::pair<const char*, Limit>, 6> limits = {{
      {"token bucket", Limit::token_bucket(10, 10)},
      {"GCRA", Limit::gcra(10, 10)},
      {"leaky bucket", Limit::leaky_bucket(10, 10)},
      {"fixed window", Limit::fixed_window(10, seconds(1))},
      {"sliding log", Limit::sliding_window_log(10, seconds(1))},
      {"sliding counter", Limit::sliding_window_counter(10, seconds(1))},
  }};
  std::vector<Run> runs;
  for (const auto& [name, limit] : limits) {
    ManualClock clock;
    auto limiter = make_limiter(limit, clock);
    Run run{name, std::vector<int>(offered.size(), 0)};
    for (std::size_t t = 0; t < offered.size(); ++t) {
      // The tick's requests arrive spread over it, the last one at its end (bursts: one instant).
      const int n = offered[t];
      for (int i = 0; i < n; ++i) {
        if (n <= 2) clock.advance(kTick / n);
        run.admitted[t] += limiter->allow() ? 1 : 0;
      }
      if (n == 0 || n > 2) clock.advance(kTick);
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

void print_table(const std::vector<int>& offered, const std::vector<Run>& runs) {
  heading("Six algorithms, the same traffic (rate 10/s, burst or limit 10 per 1 s window)");
  fmt::print("  {:<8}{:>8}", "second", "offered");
  for (const auto& run : runs) fmt::print("{:>17}", run.name);
  fmt::print("\n");
  for (int second = 0; second < kTicks / 10; ++second) {
    int sum = 0;
    for (int t = second * 10; t < second * 10 + 10; ++t)
      sum += offered[static_cast<std::size_t>(t)];
    fmt::print("  {:<8}{:>8}", fmt::format("{}-{}", second, second + 1), sum);
    for (const auto& run : runs) {
      int admitted = 0;
      for (int t = second * 10; t < second * 10 + 10; ++t)
        admitted += run.admitted[static_cast<std::size_t>(t)];
      fmt::print("{:>17}", admitted);
    }
    fmt::print("\n");
  }
  fmt::print("  {:<8}{:>8}", "total", [&] {
    int s = 0;
    for (int o : offered) s += o;
    return s;
  }());
  for (const auto& run : runs) {
    int total = 0;
    for (int a : run.admitted) total += a;
    fmt::print("{:>17}", total);
  }
  fmt::print("\n");
  const auto& fixed = runs[3].admitted;
  fmt::print(
      "  fixed window across the 8 s boundary: {} admitted within 100 ms (the 2 x limit burst);\n"
      "  sliding log: {}; sliding counter: {}.\n",
      fixed[79] + fixed[80], runs[4].admitted[79] + runs[4].admitted[80],
      runs[5].admitted[79] + runs[5].admitted[80]);
  const bool agree = runs[0].admitted == runs[1].admitted && runs[1].admitted == runs[2].admitted;
  fmt::print("  token bucket, GCRA and leaky bucket (as a meter) {} on every tick.\n",
             agree ? "agree" : "DISAGREE");
}

std::filesystem::path write_svg(const std::vector<int>& offered, const std::vector<Run>& runs) {
  constexpr double kWidth = 900, kHeight = 420, kLeft = 60, kTop = 30, kPlotW = 640, kPlotH = 330;
  const std::array<const char*, 6> colors = {"#1f77b4", "#17becf", "#2ca02c",
                                             "#d62728", "#9467bd", "#ff7f0e"};
  int max_total = 0;
  for (int o : offered) max_total += o;
  const auto x = [&](std::size_t tick) {
    return kLeft + kPlotW * static_cast<double>(tick) / kTicks;
  };
  const auto y = [&](int value) {
    return kTop + kPlotH * (1.0 - static_cast<double>(value) / max_total);
  };
  const auto polyline = [&](const std::vector<int>& per_tick, const char* color, const char* dash) {
    std::string points = fmt::format("{:.1f},{:.1f}", x(0), y(0));
    int cumulative = 0;
    for (std::size_t t = 0; t < per_tick.size(); ++t) {
      cumulative += per_tick[t];
      points += fmt::format(" {:.1f},{:.1f}", x(t + 1), y(cumulative));
    }
    return fmt::format(
        R"(<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}" points="{}"/>)",
        color, dash, points);
  };
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)"
      "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      R"(<text x="{}" y="18" font-size="14">Requests admitted over time (cumulative), same traffic, rate 10/s, limit 10</text>)"
      "\n",
      kWidth, kHeight, kLeft);
  for (int s = 0; s <= kTicks / 10; s += 2) {
    const double gx = x(static_cast<std::size_t>(s) * 10);
    svg += fmt::format(
        R"(<line x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}" stroke="#ddd"/><text x="{0:.1f}" y="{3}" text-anchor="middle">{4} s</text>)"
        "\n",
        gx, kTop, kTop + kPlotH, kTop + kPlotH + 16, s);
  }
  for (int v = 0; v <= max_total; v += 20) {
    svg += fmt::format(
        R"(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#eee"/><text x="{3}" y="{4:.1f}" text-anchor="end">{5}</text>)"
        "\n",
        kLeft, y(v), kLeft + kPlotW, kLeft - 6, y(v) + 4, v);
  }
  svg += polyline(offered, "#999", "5,4") + "\n";
  svg += fmt::format(R"(<text x="{}" y="{}" fill="#666">offered</text>)", kLeft + kPlotW + 20,
                     kTop + 10) +
         "\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    // Token bucket, GCRA and leaky bucket coincide: draw them dashed at different phases.
    svg += polyline(runs[i].admitted, colors[i],
                    i < 3 ? (i == 0   ? "none"
                             : i == 1 ? "6,6"
                                      : "2,6")
                          : "none") +
           "\n";
    svg += fmt::format(R"(<text x="{}" y="{}" fill="{}">{}</text>)", kLeft + kPlotW + 20,
                       kTop + 30 + 18 * static_cast<double>(i), colors[i], runs[i].name) +
           "\n";
  }
  svg += "</svg>\n";
  return write_demo_file("keel-rate-limiters.svg", svg);
}

void shaping() {
  heading("Leaky bucket as a shaper: a burst of 6 leaves at a constant 10/s");
  ManualClock clock;
  LeakyBucket shaper(10, 5, clock);
  for (int i = 0; i < 6; ++i) {
    const auto delay = shaper.reserve();
    if (delay) {
      fmt::print("  request {} leaves after {:>3} ms\n", i + 1,
                 std::chrono::duration_cast<milliseconds>(*delay).count());
    } else {
      fmt::print("  request {} refused: the bucket (capacity 5) is full\n", i + 1);
    }
  }
}

void keyed(MetricsRegistry& registry) {
  heading("KeyedRateLimiter: one GCRA (5/s, burst 5) per client, at most 1000 clients");
  ManualClock clock;
  KeyedRateLimiter per_client(Limit::gcra(5, 5), {.max_keys = 1000}, clock);
  Subscription metrics = per_client.register_metrics(registry, "per_client");
  int noisy = 0, quiet = 0;
  for (int i = 0; i < 50; ++i) noisy += per_client.allow("10.0.0.1") ? 1 : 0;
  for (int c = 2; c < 12; ++c) quiet += per_client.allow(fmt::format("10.0.0.{}", c)) ? 1 : 0;
  fmt::print("  a noisy client sent 50: {} admitted; 10 quiet clients sent 1 each: {} admitted\n",
             noisy, quiet);
  clock.advance(seconds(1));
  fmt::print("  after 1 s, {} idle keys purged (back to full: forgetting them changes nothing)\n",
             per_client.purge_idle());
  fmt::print("{}", registry.render());
}

}  // namespace

void run_rate_limiter_demo() {
  readme_example();
  const auto offered = traffic();
  const auto runs = simulate(offered);
  print_table(offered, runs);
  fmt::print("  chart: {}\n", write_svg(offered, runs).string());
  shaping();
  MetricsRegistry registry;
  keyed(registry);
}

}  // namespace keel::demo
