#include "case_studies/notification_system/store.h"

#include <fmt/format.h>

#include <random>

#include "case_studies/notification_system/store_internal.h"
#include "keel/core/internal/log.h"

namespace keel::notifier {

std::string_view to_string(Pool pool) noexcept {
  return pool == Pool::critical ? "critical" : "standard";
}

std::int64_t sort_key(Priority priority, WallTime due_at, const QueueRules& rules) noexcept {
  const auto step = std::chrono::duration_cast<std::chrono::milliseconds>(rules.aging_step).count();
  return to_millis(due_at) + static_cast<std::int64_t>(priority) * step;
}

namespace internal {

Preferences claimed_preferences(std::string_view document) {
  if (document.empty()) return {};
  try {
    return preferences_from_json(document);
  } catch (const std::exception& e) {
    keel::internal::logger().warn("notifier: unreadable preferences document ignored: {}",
                                  e.what());
    return {};
  }
}

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

std::string new_lease_token(Pool pool) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{}:{:016x}{:016x}", pool == Pool::critical ? 'c' : 's', random(), random());
}

Pool pool_of_token(std::string_view token) noexcept {
  return token.starts_with("c:") ? Pool::critical : Pool::standard;
}

std::string recover_leases_sql(std::string_view now, std::string_view max_attempts,
                               std::string_view lost, std::string_view cancelled) {
  return fmt::format(
      "UPDATE deliveries SET "
      "  lease_expiries = lease_expiries + CASE status WHEN 'sending' THEN 1 ELSE 0 END, "
      "  last_error = CASE WHEN status = 'claimed' THEN last_error "
      "    WHEN cancel_requested <> 0 THEN {3} "
      "    WHEN attempts >= {1} THEN 'gave up after ' || attempts || ' attempts: the lease "
      "expired ' || (lease_expiries + 1) || ' times while sending (worker lost or hung)' "
      "    ELSE {2} END, "
      "  status = CASE WHEN status = 'claimed' THEN 'queued' "
      "    WHEN cancel_requested <> 0 THEN 'cancelled' "
      "    WHEN attempts >= {1} THEN 'failed' ELSE 'retrying' END, "
      "  lease_token = NULL, lease_until = NULL, updated_at = {0} "
      "WHERE status IN {4} AND lease_until <= {0}",
      now, max_attempts, lost, cancelled, kLeasedStatuses);
}

std::string completion_sql(std::string_view status, std::string_view error,
                           std::string_view prefix) {
  return fmt::format(
      "status = CASE WHEN cancel_requested <> 0 AND {0} IN ('retrying', 'queued', 'scheduled') "
      "THEN 'cancelled' ELSE {0} END, "
      "last_error = CASE WHEN cancel_requested <> 0 AND {0} IN ('retrying', 'queued', "
      "'scheduled') THEN {2} || {1} ELSE {1} END",
      status, error, prefix);
}

std::int64_t aging_millis(const QueueRules& rules) {
  if (rules.aging_step <= Duration::zero()) {
    throw std::invalid_argument("QueueRules: aging_step must be > 0");
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(rules.aging_step).count();
}

}  // namespace internal

}  // namespace keel::notifier
