// keel metrics: counters, gauges and fixed-bucket histograms, grouped in a MetricsRegistry that
// renders the Prometheus text exposition format (version 0.0.4) for a /metrics endpoint.
//
//   MetricsRegistry registry;
//   Counter& hits = registry.counter("cache_hits_total", "Cache lookups that hit",
//                                    {{"cache", "users"}});
//   hits.inc();
//   std::string page = registry.render();
//
// Counter, Gauge and Histogram updates are lock-free (atomics only) and safe from any thread.
// The registry is thread-safe; references it returns stay valid for its lifetime. Components
// that keep their own counters (a `metrics()` struct) expose them with counter_fn/gauge_fn,
// read at render time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/subscription.h"

namespace keel {

// Label name -> value. Names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__";
// values are any UTF-8 text (escaped on output).
using Labels = std::map<std::string, std::string, std::less<>>;

// A monotonically increasing count.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double delta) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  void inc() noexcept { add(1.0); }
  void dec() noexcept { add(-1.0); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into fixed buckets (by inclusive upper bound, plus +Inf), with their sum.
// observe() is O(log buckets) and lock-free.
class Histogram {
 public:
  // REQUIRES: bounds finite and strictly increasing (else std::invalid_argument). Empty = only
  // +Inf.
  explicit Histogram(std::vector<double> upper_bounds);

  void observe(double value) noexcept;
  // Observes a duration in seconds, the Prometheus base unit.
  void observe(Duration d) noexcept;

  struct Snapshot {
    std::vector<double> upper_bounds;       // without +Inf
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  // Taken without a lock: under concurrent observes it may miss the latest ones, but counts are
  // always cumulative and count equals the +Inf bucket.
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }

  // Prometheus' default latency buckets in seconds: 5 ms .. 10 s.
  static std::vector<double> default_buckets();
  // start, start*factor, ... (count bounds). REQUIRES: start > 0, factor > 1, count >= 1.
  static std::vector<double> exponential_buckets(double start, double factor, std::size_t count);
  // start, start+width, ... (count bounds). REQUIRES: width > 0, count >= 1.
  static std::vector<double> linear_buckets(double start, double width, std::size_t count);

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, non-cumulative; +Inf last
  std::atomic<double> sum_{0.0};
};

// A named set of metric families, rendered as Prometheus text.
//
// Asking twice for the same name and labels returns the same metric; the same name with another
// type (or other histogram buckets) throws std::invalid_argument, as do invalid metric or label
// names. Families render in registration order, series within a family likewise.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The Content-Type of render()'s output.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds = Histogram::default_buckets(),
                       const Labels& labels = {});

  // A series whose value `read` returns at render time (e.g. from a component's metrics()).
  // The series is removed when the Subscription ends; `read` is never called after that.
  // A series with the same name and labels must not exist yet.
  Subscription counter_fn(std::string_view name, std::string_view help, const Labels& labels,
                          std::function<double()> read);
  Subscription gauge_fn(std::string_view name, std::string_view help, const Labels& labels,
                        std::function<double()> read);

  std::string render() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Rendering helpers, exposed for components that write their own exposition text.
namespace prometheus {
// Escapes a label value: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);
// Escapes HELP text: backslash and newline.
std::string escape_help(std::string_view help);
// A sample value: shortest round-trip decimal, or +Inf, -Inf, NaN.
std::string format_value(double value);
bool is_valid_metric_name(std::string_view name) noexcept;
bool is_valid_label_name(std::string_view name) noexcept;
}  // namespace prometheus

}  // namespace keel
