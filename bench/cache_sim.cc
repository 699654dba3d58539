// keel-cache-sim: replays cache traces through LruCache and TinyLfuCache at several sizes and
// prints the hit ratios; --opt adds Belady's clairvoyant optimum (the ceiling for any policy);
// --svg draws hit ratio against size; --check compares LRU with the published figures of the ARC
// paper and requires W-TinyLFU to beat LRU on every row.
//
//   keel-cache-sim ../shared/data/cache-traces/arc-OLTP.lis.zst --check
//   keel-cache-sim --sizes 1000,5000 --opt --svg hit-ratios.svg trace.gz ...
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench/trace_reader.h"
#include "keel/cache.h"

namespace {

using keel::bench::TraceFormat;

struct Row {
  std::string trace;
  std::size_t size;
  double lru;
  double tinylfu;
  std::optional<double> opt;
};

// LRU hit ratios (percent) published in the ARC paper (Megiddo & Modha, FAST 2003, Tables IV
// and V; see ../shared/data/cache-traces/README.md).
const std::map<std::pair<std::string, std::size_t>, double>& published_lru() {
  static const std::map<std::pair<std::string, std::size_t>, double> table = {
      {{"arc-OLTP", 1000}, 32.83},  {{"arc-OLTP", 2000}, 42.47},  {{"arc-OLTP", 5000}, 53.65},
      {{"arc-OLTP", 10000}, 60.70}, {{"arc-OLTP", 15000}, 64.63}, {{"arc-P2", 32768}, 18.47},
      {{"arc-P3", 32768}, 3.57},    {{"arc-P6", 32768}, 4.24},    {{"arc-P12", 32768}, 8.93},
  };
  return table;
}

std::string trace_name(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  for (const char* suffix : {".zst", ".gz", ".lis", ".trace"}) {
    if (name.size() > std::strlen(suffix) && name.ends_with(suffix)) {
      name.resize(name.size() - std::strlen(suffix));
    }
  }
  return name;
}

// The ARC paper's sizes for its traces; for the others, 5 %, 10 %, 25 % and 50 % of the distinct
// keys (a cache that holds every key makes every policy equal: only cold misses remain).
std::vector<std::size_t> default_sizes(const std::string& name,
                                       const std::vector<std::uint64_t>& keys) {
  if (name.find("OLTP") != std::string::npos) return {1000, 2000, 5000, 10000, 15000};
  if (name.starts_with("arc-P")) return {8192, 16384, 32768};
  const std::size_t distinct = std::unordered_set<std::uint64_t>(keys.begin(), keys.end()).size();
  std::vector<std::size_t> sizes;
  for (const std::size_t percent : {5U, 10U, 25U, 50U}) {
    sizes.push_back(std::max<std::size_t>(10, distinct * percent / 100));
  }
  return sizes;
}

template <class Cache>
double replay(const std::vector<std::uint64_t>& keys, std::size_t size) {
  Cache cache(size, keel::cache::CacheOptions{.shards = 1});
  for (const std::uint64_t key : keys) {
    if (!cache.get(key)) cache.put(key, true);
  }
  return 100.0 * cache.stats().hit_rate();
}

// For each request, the position of the next request for the same key, or `keys.size() + i`
// (unique, and later than every real one) when the key does not come back.
std::vector<std::uint64_t> next_uses(const std::vector<std::uint64_t>& keys) {
  std::vector<std::uint64_t> next(keys.size());
  std::unordered_map<std::uint64_t, std::uint64_t> seen_at;
  for (std::size_t i = keys.size(); i-- > 0;) {
    const auto it = seen_at.find(keys[i]);
    next[i] = it != seen_at.end() ? it->second : keys.size() + i;
    seen_at[keys[i]] = i;
  }
  return next;
}

// Belady's MIN: on overflow, evict the resident key whose next request is furthest away (the new
// key itself included). A resident key is identified by the position of its next request, which
// no other key shares, so request i hits exactly when i is in the set.
double replay_optimal(const std::vector<std::uint64_t>& next, std::size_t size) {
  std::set<std::uint64_t> resident;
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < next.size(); ++i) {
    hits += resident.erase(i);
    resident.insert(next[i]);
    if (resident.size() > size) resident.erase(std::prev(resident.end()));
  }
  return next.empty() ? 0 : 100.0 * static_cast<double>(hits) / static_cast<double>(next.size());
}

std::string svg_chart(const std::vector<Row>& rows) {
  std::vector<std::string> traces;
  for (const Row& r : rows) {
    if (traces.empty() || traces.back() != r.trace) traces.push_back(r.trace);
  }
  constexpr double kPanelW = 260, kPanelH = 200, kPad = 50;
  constexpr std::size_t kPerRow = 5;
  const std::size_t columns = std::min(kPerRow, traces.size());
  const std::size_t rows_of_panels = (traces.size() + kPerRow - 1) / kPerRow;
  const double width = kPad + static_cast<double>(columns) * (kPanelW + kPad);
  const double height = 30 + static_cast<double>(rows_of_panels) * (kPanelH + kPad + 20);
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">)"
      "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      R"(<text x="{}" y="18" font-size="14">Hit ratio (%) against cache size: LRU (red), W-TinyLFU (blue), optimum (grey, dashed, with --opt)</text>)"
      "\n",
      width, height, kPad);
  for (std::size_t t = 0; t < traces.size(); ++t) {
    std::vector<const Row*> panel;
    for (const Row& r : rows) {
      if (r.trace == traces[t]) panel.push_back(&r);
    }
    double top = 0;
    for (const Row* r : panel) top = std::max({top, r->lru, r->tinylfu, r->opt.value_or(0)});
    top = std::ceil(top / 10) * 10;
    const double x0 = kPad + static_cast<double>(t % kPerRow) * (kPanelW + kPad);
    const double y0 = 50 + static_cast<double>(t / kPerRow) * (kPanelH + kPad + 20);
    const auto x = [&](std::size_t i) {
      return panel.size() == 1
                 ? x0 + kPanelW / 2
                 : x0 + kPanelW * static_cast<double>(i) / static_cast<double>(panel.size() - 1);
    };
    const auto y = [&](double v) { return y0 + kPanelH * (1 - v / top); };
    svg += fmt::format(
        R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#ccc"/><text x="{}" y="{}">{}</text>)"
        "\n",
        x0, y0, kPanelW, kPanelH, x0, y0 - 6, traces[t]);
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end">{:.0f}</text>)", x0 - 4,
                       y(top) + 4, top) +
           fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end">0</text>)", x0 - 4, y(0) + 4) +
           "\n";
    for (const auto& [color, member] :
         {std::pair{"#d62728", &Row::lru}, std::pair{"#1f77b4", &Row::tinylfu}}) {
      std::string points;
      for (std::size_t i = 0; i < panel.size(); ++i) {
        points += fmt::format("{:.1f},{:.1f} ", x(i), y(panel[i]->*member));
        svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)", x(i),
                           y(panel[i]->*member), color);
      }
      svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)",
                         color, points) +
             "\n";
    }
    if (panel.front()->opt) {
      std::string points;
      for (std::size_t i = 0; i < panel.size(); ++i) {
        points += fmt::format("{:.1f},{:.1f} ", x(i), y(panel[i]->opt.value_or(0)));
      }
      svg +=
          fmt::format(
              R"(<polyline fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="4,3" points="{}"/>)",
              points) +
          "\n";
    }
    for (std::size_t i = 0; i < panel.size(); ++i) {
      svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)", x(i),
                         y(0) + 14, panel[i]->size) +
             "\n";
    }
  }
  return svg + "</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"keel-cache-sim: replay cache traces through LRU and W-TinyLFU"};
  std::vector<std::string> traces;
  std::vector<std::size_t> sizes;
  std::string format_name = "auto";
  std::string svg_path;
  bool check = false;
  bool optimal = false;
  app.add_option("traces", traces, "Trace files (plain, gzip or zstd)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--sizes", sizes, "Cache sizes (default: per trace)")->delimiter(',');
  app.add_option("--format", format_name, "auto, arc or lirs")
      ->check(CLI::IsMember({"auto", "arc", "lirs"}));
  app.add_option("--svg", svg_path, "Write a hit-ratio chart here");
  app.add_flag("--opt", optimal,
               "Also replay Belady's clairvoyant optimum, the ceiling for any policy (slower, and "
               "8 bytes of memory per request)");
  app.add_flag("--check", check,
               "Fail unless LRU equals the ARC paper's figures and W-TinyLFU beats LRU everywhere");
  CLI11_PARSE(app, argc, argv);
  const TraceFormat format = format_name == "arc"    ? TraceFormat::arc
                             : format_name == "lirs" ? TraceFormat::lirs
                                                     : TraceFormat::automatic;

  std::vector<Row> rows;
  bool ok = true;
  fmt::print("{:<16} {:>8} {:>10} {:>10} {:>10} {:>12}{}  {}\n", "trace", "size", "LRU %",
             "W-TinyLFU %", "gain", "ARC paper", optimal ? fmt::format(" {:>10}", "OPT %") : "",
             "");
  for (const std::string& path : traces) {
    const std::string name = trace_name(path);
    std::vector<std::uint64_t> keys;
    const auto started = std::chrono::steady_clock::now();
    try {
      keel::bench::read_trace(path, format, [&](std::uint64_t key) { keys.push_back(key); });
    } catch (const std::exception& e) {
      fmt::print(stderr, "keel-cache-sim: {}\n", e.what());
      return 2;
    }
    const std::vector<std::uint64_t> next =
        optimal ? next_uses(keys) : std::vector<std::uint64_t>{};
    for (const std::size_t size : sizes.empty() ? default_sizes(name, keys) : sizes) {
      const double lru = replay<keel::cache::LruCache<std::uint64_t, bool>>(keys, size);
      const double tinylfu = replay<keel::cache::TinyLfuCache<std::uint64_t, bool>>(keys, size);
      const std::optional<double> opt =
          optimal ? std::optional(replay_optimal(next, size)) : std::nullopt;
      rows.push_back({name, size, lru, tinylfu, opt});
      std::string reference = "-";
      std::string verdict;
      if (auto it = published_lru().find({name, size}); it != published_lru().end()) {
        reference = fmt::format("{:.2f}", it->second);
        if (fmt::format("{:.2f}", lru) != reference) {
          verdict = "LRU DIFFERS FROM THE PAPER";
          ok = false;
        }
      }
      if (tinylfu <= lru) {
        verdict +=
            verdict.empty() ? "W-TinyLFU DOES NOT BEAT LRU" : "; W-TinyLFU DOES NOT BEAT LRU";
        // When LRU already scores the optimum, no policy can beat it: say so.
        if (opt && fmt::format("{:.2f}", *opt) == fmt::format("{:.2f}", lru)) {
          verdict += " (LRU is optimal here)";
        }
        ok = false;
      }
      fmt::print("{:<16} {:>8} {:>10.2f} {:>10.2f} {:>+10.2f} {:>12}{}  {}\n", name, size, lru,
                 tinylfu, tinylfu - lru, reference,
                 opt ? fmt::format(" {:>10.2f}", *opt) : std::string(), verdict);
    }
    fmt::print(stderr, "  ({}: {} requests, {:.1f} s)\n", name, keys.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (!svg_path.empty()) {
    std::ofstream(svg_path) << svg_chart(rows);
    fmt::print("chart: {}\n", svg_path);
  }
  if (check) fmt::print("check: {}\n", ok ? "passed" : "FAILED");
  return check && !ok ? 1 : 0;
}
