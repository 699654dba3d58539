#include "keel/core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace keel {
namespace {

using ::testing::HasSubstr;

// Parses `text` with the reference Prometheus client's parser (tests/support/parse_prometheus.py)
// and returns its samples as "type name labels value" lines.
std::set<std::string> parse_with_reference_parser(const std::string& text) {
  const auto result = testing::run_command({KEEL_PYTHON3, KEEL_PROMETHEUS_PARSER}, text);
  EXPECT_EQ(result.exit_code, 0) << "the reference parser rejected the output:\n"
                                 << result.err << "\n--- input ---\n"
                                 << text;
  std::set<std::string> samples;
  std::istringstream lines(result.out);
  for (std::string line; std::getline(lines, line);) samples.insert(line);
  return samples;
}

TEST(MetricsTest, CounterGaugeHistogramBasics) {
  Counter c;
  c.inc();
  c.inc(41);
  EXPECT_EQ(c.value(), 42u);
  Gauge g;
  g.set(3.5);
  g.inc();
  g.dec();
  g.add(-1.25);
  EXPECT_DOUBLE_EQ(g.value(), 2.25);
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 5.0, 7.0}) h.observe(v);
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{2, 3, 4, 5}))
      << "bounds are inclusive (1.0 lands in le=1) and counts cumulative";
  EXPECT_EQ(snap.count, 5u);
  EXPECT_DOUBLE_EQ(snap.sum, 15.0);
}

TEST(MetricsTest, HistogramObservesDurationsInSeconds) {
  Histogram h({0.1, 1});
  h.observe(std::chrono::milliseconds(250));
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{0, 1, 1}));
  EXPECT_DOUBLE_EQ(snap.sum, 0.25);
}

TEST(MetricsTest, HistogramRejectsBadBuckets) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(Histogram::exponential_buckets(0, 2, 3), std::invalid_argument);
  EXPECT_THROW(Histogram::linear_buckets(0, -1, 3), std::invalid_argument);
  EXPECT_EQ(Histogram::exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(Histogram::linear_buckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
}

TEST(MetricsRegistryTest, RendersTheExpositionFormat) {
  MetricsRegistry registry;
  registry.counter("http_requests_total", "Requests served", {{"code", "200"}}).inc(3);
  registry.counter("http_requests_total", "Requests served", {{"code", "500"}}).inc();
  registry.gauge("queue_depth", "Items waiting").set(7);
  auto& latency = registry.histogram("latency_seconds", "Request latency", {0.1, 1});
  latency.observe(0.05);
  latency.observe(0.5);
  EXPECT_EQ(registry.render(),
            "# HELP http_requests_total Requests served\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{code=\"200\"} 3\n"
            "http_requests_total{code=\"500\"} 1\n"
            "# HELP queue_depth Items waiting\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 7\n"
            "# HELP latency_seconds Request latency\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.1\"} 1\n"
            "latency_seconds_bucket{le=\"1\"} 2\n"
            "latency_seconds_bucket{le=\"+Inf\"} 2\n"
            "latency_seconds_sum 0.55\n"
            "latency_seconds_count 2\n");
}

TEST(MetricsRegistryTest, ReferenceParserReadsEverythingWeRender) {
  MetricsRegistry registry;
  registry.counter("jobs_total", "Jobs\\done\nsecond line", {{"queue", "a \"quoted\" \\ name\n"}})
      .inc(5);
  registry.gauge("temperature_celsius", "Now", {{"room", "lab"}, {"floor", "2"}}).set(-3.5);
  registry.gauge("ratio", "Special values", {{"kind", "inf"}})
      .set(std::numeric_limits<double>::infinity());
  auto& h = registry.histogram("size_bytes", "Sizes", {10, 100}, {{"path", "/x"}});
  h.observe(5);
  h.observe(50);
  h.observe(500);
  double reads = 12;
  auto sub = registry.gauge_fn("live_items", "Read at render time", {}, [&] { return reads; });

  const auto samples = parse_with_reference_parser(registry.render());
  const std::set<std::string> expected = {
      R"(counter jobs_total queue="a \"quoted\" \\ name\n" 5.0)",
      R"(gauge temperature_celsius floor="2",room="lab" -3.5)",
      R"(gauge ratio kind="inf" inf)",
      R"(histogram size_bytes_bucket le="10",path="/x" 1.0)",
      R"(histogram size_bytes_bucket le="100",path="/x" 2.0)",
      R"(histogram size_bytes_bucket le="+Inf",path="/x" 3.0)",
      R"(histogram size_bytes_sum path="/x" 555.0)",
      R"(histogram size_bytes_count path="/x" 3.0)",
      R"(gauge live_items  12.0)",
  };
  EXPECT_EQ(samples, expected) << "label values (quote, backslash, newline) must round-trip";
}

TEST(MetricsRegistryTest, SameNameAndLabelsReturnTheSameMetric) {
  MetricsRegistry registry;
  Counter& a = registry.counter("x_total", "X", {{"k", "v"}});
  Counter& b = registry.counter("x_total", "X", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &registry.counter("x_total", "X", {{"k", "w"}}));
}

TEST(MetricsRegistryTest, RejectsInvalidNamesAndTypeClashes) {
  MetricsRegistry registry;
  registry.counter("x_total", "X");
  EXPECT_THROW(registry.gauge("x_total", "X"), std::invalid_argument);
  EXPECT_THROW(registry.counter("1bad", "X"), std::invalid_argument);
  EXPECT_THROW(registry.counter("bad-name", "X"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "X", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "X", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "H", {1}, {{"le", "1"}}), std::invalid_argument);
  registry.histogram("h2", "H", {1, 2});
  EXPECT_THROW(registry.histogram("h2", "H", {1, 3}), std::invalid_argument);
  auto sub = registry.counter_fn("fn_total", "F", {}, [] { return 1.0; });
  EXPECT_THROW(registry.counter_fn("fn_total", "F", {}, [] { return 2.0; }), std::invalid_argument);
  try {
    registry.counter("bad name", "X");
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'bad name'")) << "the message names the bad value";
  }
}

TEST(MetricsRegistryTest, FunctionSeriesDisappearWithTheirSubscription) {
  MetricsRegistry registry;
  int reads = 0;
  auto sub = registry.counter_fn("reads_total", "R", {{"c", "1"}}, [&] { return ++reads; });
  EXPECT_THAT(registry.render(), HasSubstr("reads_total{c=\"1\"} 1\n"));
  sub.unsubscribe();
  EXPECT_EQ(registry.render(), "") << "a family without series is not rendered";
  EXPECT_EQ(reads, 1);
}

TEST(MetricsRegistryTest, CountsAreExactUnderConcurrentUpdatesAndRenders) {
  MetricsRegistry registry;
  auto& counter = registry.counter("ops_total", "Ops");
  auto& histogram = registry.histogram("op_seconds", "Op time", {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        counter.inc();
        histogram.observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) registry.gauge("g", "G", {{"t", std::to_string(t)}}).inc();
      }
    });
  }
  std::thread renderer([&] {
    for (int i = 0; i < 50; ++i) EXPECT_FALSE(registry.render().empty());
  });
  for (auto& t : threads) t.join();
  renderer.join();
  EXPECT_EQ(counter.value(), 40000u);
  const auto snap = histogram.snapshot();
  EXPECT_EQ(snap.count, 40000u);
  EXPECT_EQ(snap.cumulative[0], 20000u);
  EXPECT_DOUBLE_EQ(snap.sum, 20000 * 0.25 + 20000 * 1.0);
}

TEST(PrometheusTextTest, EscapesAndFormatsValues) {
  EXPECT_EQ(prometheus::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(prometheus::escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  EXPECT_EQ(prometheus::format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(prometheus::format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(prometheus::format_value(std::nan("")), "NaN");
  EXPECT_EQ(prometheus::format_value(0.1), "0.1");
}

}  // namespace
}  // namespace keel
