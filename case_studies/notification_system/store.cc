#include "case_studies/notification_system/store.h"

#include <fmt/format.h>

#include <random>

#include "case_studies/notification_system/store_internal.h"

namespace keel::notifier {

std::string_view to_string(Pool pool) noexcept {
  return pool == Pool::critical ? "critical" : "standard";
}

std::int64_t sort_key(Priority priority, WallTime due_at, const QueueRules& rules) noexcept {
  const auto step = std::chrono::duration_cast<std::chrono::milliseconds>(rules.aging_step).count();
  return to_millis(due_at) + static_cast<std::int64_t>(priority) * step;
}

namespace internal {

DeliveryStatus status_from_text(std::string_view text) {
  if (text == "claimed") return DeliveryStatus::queued;
  const std::optional<DeliveryStatus> status = parse_delivery_status(text);
  if (!status)
    throw std::runtime_error(fmt::format("unknown delivery status '{}' in the store", text));
  return *status;
}

Channel channel_from_text(std::string_view text) {
  const std::optional<Channel> channel = parse_channel(text);
  if (!channel) throw std::runtime_error(fmt::format("unknown channel '{}' in the store", text));
  return *channel;
}

Priority priority_from_rank(std::int64_t rank) {
  if (rank < 0 || rank > 3)
    throw std::runtime_error(fmt::format("unknown priority {} in the store", rank));
  return static_cast<Priority>(rank);
}

std::string new_lease_token() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", random(), random());
}

std::int64_t aging_millis(const QueueRules& rules) {
  if (rules.aging_step <= Duration::zero()) {
    throw std::invalid_argument("QueueRules: aging_step must be > 0");
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(rules.aging_step).count();
}

}  // namespace internal

}  // namespace keel::notifier
