#include "keel/resilience/bulkhead.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace keel::resilience {

void BulkheadConfig::validate() const {
  if (max_concurrent_calls < 1) {
    throw std::invalid_argument(fmt::format(
        "BulkheadConfig.max_concurrent_calls must be >= 1, got {}", max_concurrent_calls));
  }
  if (max_wait < Duration::zero()) {
    throw std::invalid_argument(
        fmt::format("BulkheadConfig.max_wait must be >= 0, got {}", max_wait));
  }
}

BulkheadFull::BulkheadFull(std::string bulkhead)
    : std::runtime_error(fmt::format("bulkhead '{}' is full", bulkhead)),
      bulkhead_(std::move(bulkhead)) {}

Bulkhead::Bulkhead(BulkheadConfig config, const Clock& clock)
    : config_((config.validate(), std::move(config))), clock_(clock) {}

bool Bulkhead::take_slot_locked() {
  if (in_flight_ >= config_.max_concurrent_calls) return false;
  ++in_flight_;
  ++admitted_;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
  return true;
}

bool Bulkhead::wait_for_slot(std::unique_lock<std::mutex>& lock) {
  const TimePoint deadline = clock_.now() + config_.max_wait;
  ++waiting_;
  bool admitted = false;
  for (;;) {
    // Real time, sliced so that the injected clock is read again at least every kWaitSlice; at
    // least 1 ms so that a waiter on a ManualClock does not spin.
    const Duration left = deadline - clock_.now();
    slot_freed_.wait_for(lock,
                         std::clamp<Duration>(left, std::chrono::milliseconds(1), kWaitSlice));
    if (take_slot_locked()) {
      admitted = true;
      break;
    }
    if (clock_.now() >= deadline) break;
  }
  --waiting_;
  return admitted;
}

bool Bulkhead::try_acquire_permission() {
  std::unique_lock lock(mu_);
  if (take_slot_locked()) return true;
  if (config_.max_wait > Duration::zero() && wait_for_slot(lock)) return true;
  ++rejected_;
  return false;
}

void Bulkhead::release_permission() {
  {
    std::lock_guard lock(mu_);
    if (in_flight_ == 0) {
      throw std::logic_error(
          fmt::format("Bulkhead '{}': release_permission() without a permission", config_.name));
    }
    --in_flight_;
    if (waiting_ == 0) return;
  }
  slot_freed_.notify_one();
}

BulkheadMetrics Bulkhead::metrics() const {
  std::lock_guard lock(mu_);
  return {.admitted = admitted_,
          .rejected = rejected_,
          .in_flight = in_flight_,
          .peak_in_flight = peak_in_flight_,
          .waiting = waiting_,
          .max_concurrent_calls = config_.max_concurrent_calls};
}

Subscription Bulkhead::register_metrics(MetricsRegistry& registry) const {
  const std::string& bulkhead = name();
  std::vector<Subscription> parts;
  const auto calls = [&](const char* outcome, std::uint64_t BulkheadMetrics::*field) {
    parts.push_back(
        registry.counter_fn("keel_bulkhead_calls_total", "Calls through the bulkhead by outcome",
                            {{"bulkhead", bulkhead}, {"outcome", outcome}},
                            [this, field] { return static_cast<double>(metrics().*field); }));
  };
  calls("admitted", &BulkheadMetrics::admitted);
  calls("rejected", &BulkheadMetrics::rejected);
  const auto gauge = [&](const char* metric, const char* help,
                         std::int64_t BulkheadMetrics::*field) {
    parts.push_back(registry.gauge_fn(metric, help, {{"bulkhead", bulkhead}}, [this, field] {
      return static_cast<double>(metrics().*field);
    }));
  };
  gauge("keel_bulkhead_in_flight", "Calls holding a bulkhead slot", &BulkheadMetrics::in_flight);
  gauge("keel_bulkhead_waiting", "Calls waiting for a bulkhead slot", &BulkheadMetrics::waiting);
  gauge("keel_bulkhead_max_concurrent_calls", "Slots of the bulkhead",
        &BulkheadMetrics::max_concurrent_calls);
  return Subscription::all(std::move(parts));
}

}  // namespace keel::resilience
