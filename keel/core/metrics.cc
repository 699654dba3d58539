#include "keel/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace keel {

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) {
      throw std::invalid_argument(
          fmt::format("Histogram: bucket bound {} is not finite (+Inf is implicit)", bounds_[i]));
    }
    if (i > 0 && bounds_[i] <= bounds_[i - 1]) {
      throw std::invalid_argument(
          fmt::format("Histogram: bucket bounds must increase strictly, got {} after {}",
                      bounds_[i], bounds_[i - 1]));
    }
  }
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double value) noexcept {
  // First bucket whose upper bound is >= value; NaN lands in +Inf.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  const auto bucket = static_cast<std::size_t>(it - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::observe(Duration d) noexcept { observe(std::chrono::duration<double>(d).count()); }

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> Histogram::default_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> Histogram::exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0) || !(factor > 1) || count == 0) {
    throw std::invalid_argument(fmt::format(
        "Histogram::exponential_buckets: need start > 0, factor > 1, count >= 1; got {}, {}, {}",
        start, factor, count));
  }
  std::vector<double> bounds(count);
  for (std::size_t i = 0; i < count; ++i) bounds[i] = i == 0 ? start : bounds[i - 1] * factor;
  return bounds;
}

std::vector<double> Histogram::linear_buckets(double start, double width, std::size_t count) {
  if (!(width > 0) || count == 0) {
    throw std::invalid_argument(fmt::format(
        "Histogram::linear_buckets: need width > 0, count >= 1; got {}, {}", width, count));
  }
  std::vector<double> bounds(count);
  for (std::size_t i = 0; i < count; ++i) bounds[i] = start + static_cast<double>(i) * width;
  return bounds;
}

// ---- text format helpers ----

namespace prometheus {

namespace {
// Backslash and newline are escaped everywhere; double quotes only inside label values.
std::string escape(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string escape_label_value(std::string_view value) { return escape(value, true); }

std::string escape_help(std::string_view help) { return escape(help, false); }

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

namespace {
bool is_name_char(char c, bool first, bool allow_colon) noexcept {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  const bool digit = c >= '0' && c <= '9';
  return alpha || (allow_colon && c == ':') || (!first && digit);
}

bool is_valid_name(std::string_view name, bool allow_colon) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}
}  // namespace

bool is_valid_metric_name(std::string_view name) noexcept { return is_valid_name(name, true); }

bool is_valid_label_name(std::string_view name) noexcept {
  return is_valid_name(name, false) && !name.starts_with("__");
}

}  // namespace prometheus

// ---- MetricsRegistry ----

namespace {

enum class Type { counter, gauge, histogram };

std::string_view type_name(Type type) {
  switch (type) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

struct Series {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> read;  // set for counter_fn/gauge_fn series
};

struct Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<double> bounds;  // histograms only
  std::vector<std::shared_ptr<Series>> series;
};

// `{a="x",b="y"}`, with `extra` (the histogram's le) last; empty when there are no labels.
std::string render_labels(const Labels& labels, std::string_view extra_name = {},
                          std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    fmt::format_to(std::back_inserter(out), "{}=\"{}\"", name,
                   prometheus::escape_label_value(value));
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out += '}';
  return out;
}

void render_series(std::string& out, const Family& family, const Series& series) {
  const std::string labels = render_labels(series.labels);
  auto line = [&](std::string_view suffix, std::string_view label_text, std::string_view value) {
    fmt::format_to(std::back_inserter(out), "{}{}{} {}\n", family.name, suffix, label_text, value);
  };
  if (series.read) {
    line("", labels, prometheus::format_value(series.read()));
  } else if (series.counter) {
    line("", labels, fmt::format("{}", series.counter->value()));
  } else if (series.gauge) {
    line("", labels, prometheus::format_value(series.gauge->value()));
  } else if (series.histogram) {
    const auto snap = series.histogram->snapshot();
    for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
      const std::string le = i < snap.upper_bounds.size()
                                 ? prometheus::format_value(snap.upper_bounds[i])
                                 : std::string("+Inf");
      line("_bucket", render_labels(series.labels, "le", le),
           fmt::format("{}", snap.cumulative[i]));
    }
    line("_sum", labels, prometheus::format_value(snap.sum));
    line("_count", labels, fmt::format("{}", snap.count));
  }
}

}  // namespace

struct MetricsRegistry::Impl {
  mutable std::mutex mu;
  std::vector<std::unique_ptr<Family>> families;  // GUARDED_BY(mu)

  // REQUIRES: mu held. Finds or creates the family, checking that the type matches.
  Family& family(std::string_view name, std::string_view help, Type type,
                 const std::vector<double>* bounds) {
    if (!prometheus::is_valid_metric_name(name)) {
      throw std::invalid_argument(fmt::format(
          "MetricsRegistry: invalid metric name '{}' (want [a-zA-Z_:][a-zA-Z0-9_:]*)", name));
    }
    for (auto& f : families) {
      if (f->name != name) continue;
      if (f->type != type) {
        throw std::invalid_argument(fmt::format("MetricsRegistry: '{}' is already a {}, not a {}",
                                                name, type_name(f->type), type_name(type)));
      }
      if (bounds && *bounds != f->bounds) {
        throw std::invalid_argument(
            fmt::format("MetricsRegistry: histogram '{}' already exists with other buckets", name));
      }
      return *f;
    }
    auto created = std::make_unique<Family>();
    created->name = std::string(name);
    created->help = std::string(help);
    created->type = type;
    if (bounds) created->bounds = *bounds;
    families.push_back(std::move(created));
    return *families.back();
  }

  static void validate_labels(const Family& family, const Labels& labels) {
    for (const auto& [label, value] : labels) {
      if (!prometheus::is_valid_label_name(label)) {
        throw std::invalid_argument(
            fmt::format("MetricsRegistry: invalid label name '{}' on '{}'", label, family.name));
      }
      if (family.type == Type::histogram && label == "le") {
        throw std::invalid_argument(fmt::format(
            "MetricsRegistry: label 'le' is reserved for histogram buckets ('{}')", family.name));
      }
    }
  }

  static std::shared_ptr<Series> find(const Family& family, const Labels& labels) {
    for (const auto& s : family.series) {
      if (s->labels == labels) return s;
    }
    return nullptr;
  }

  // REQUIRES: mu held. The series for `labels`, created by `make` when missing.
  template <class Make>
  Series& series(Family& family, const Labels& labels, Make make) {
    validate_labels(family, labels);
    if (auto existing = find(family, labels)) {
      if (existing->read) {
        throw std::invalid_argument(fmt::format("MetricsRegistry: '{}{}' is a function series",
                                                family.name, render_labels(labels)));
      }
      return *existing;
    }
    auto created = std::make_shared<Series>();
    created->labels = labels;
    make(*created);
    family.series.push_back(created);
    return *created;
  }

  Subscription add_fn(const std::shared_ptr<Impl>& self, std::string_view name,
                      std::string_view help, Type type, const Labels& labels,
                      std::function<double()> read) {
    if (!read) throw std::invalid_argument("MetricsRegistry: empty read function");
    std::lock_guard lock(mu);
    Family& f = family(name, help, type, nullptr);
    validate_labels(f, labels);
    if (find(f, labels)) {
      throw std::invalid_argument(fmt::format("MetricsRegistry: series '{}{}' already exists",
                                              f.name, render_labels(labels)));
    }
    auto created = std::make_shared<Series>();
    created->labels = labels;
    created->read = std::move(read);
    f.series.push_back(created);
    std::weak_ptr<Impl> weak = self;
    std::weak_ptr<Series> weak_series = created;
    return Subscription([weak, weak_series, family_name = f.name] {
      auto impl = weak.lock();
      auto target = weak_series.lock();
      if (!impl || !target) return;
      std::lock_guard remove_lock(impl->mu);  // waits for a render() calling `read`
      for (auto& fam : impl->families) {
        if (fam->name == family_name) std::erase(fam->series, target);
      }
    });
  }
};

MetricsRegistry::MetricsRegistry() : impl_(std::make_shared<Impl>()) {}
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& f = impl_->family(name, help, Type::counter, nullptr);
  return *impl_->series(f, labels, [](Series& s) { s.counter = std::make_unique<Counter>(); })
              .counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(impl_->mu);
  auto& f = impl_->family(name, help, Type::gauge, nullptr);
  return *impl_->series(f, labels, [](Series& s) { s.gauge = std::make_unique<Gauge>(); }).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds, const Labels& labels) {
  // Built (and its bounds validated) before the registry is touched; dropped if the series exists.
  auto created = std::make_unique<Histogram>(std::move(upper_bounds));
  std::lock_guard lock(impl_->mu);
  auto& f = impl_->family(name, help, Type::histogram, &created->upper_bounds());
  return *impl_->series(f, labels, [&](Series& s) { s.histogram = std::move(created); }).histogram;
}

Subscription MetricsRegistry::counter_fn(std::string_view name, std::string_view help,
                                         const Labels& labels, std::function<double()> read) {
  return impl_->add_fn(impl_, name, help, Type::counter, labels, std::move(read));
}

Subscription MetricsRegistry::gauge_fn(std::string_view name, std::string_view help,
                                       const Labels& labels, std::function<double()> read) {
  return impl_->add_fn(impl_, name, help, Type::gauge, labels, std::move(read));
}

std::string MetricsRegistry::render() const {
  std::string out;
  std::lock_guard lock(impl_->mu);
  for (const auto& family : impl_->families) {
    if (family->series.empty()) continue;
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", family->name,
                   prometheus::escape_help(family->help), family->name, type_name(family->type));
    for (const auto& series : family->series) render_series(out, *family, *series);
  }
  return out;
}

}  // namespace keel
