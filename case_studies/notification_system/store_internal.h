// Shared by the SQLite and PostgreSQL stores: status and column conversions. Not installed.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

#include "case_studies/notification_system/store.h"

namespace keel::notifier::internal {

// Idempotency keys older than the cutoff forgotten per insert(): bounded work per call, more
// than the one key an insert adds, so the table shrinks back after a burst.
inline constexpr int kKeyPurgeBatch = 100;

// Statuses a worker may claim once due, as an SQL list.
inline constexpr std::string_view kPendingStatuses = "('queued', 'scheduled', 'retrying')";
inline constexpr std::string_view kLeasedStatuses = "('claimed', 'sending')";
inline constexpr std::string_view kLeaseLost =
    "lease expired while sending (worker lost); sending again";
// last_error prefixes of the other outcomes of lease recovery and of a cancel mid-send.
inline constexpr std::string_view kCancelledWhileSending = "cancelled while sending; the attempt: ";
inline constexpr std::string_view kCancelledLeaseLost =
    "cancelled while sending; the lease expired (worker lost)";

// Lease recovery, for both engines: `now` and `max_attempts` are SQL expressions (parameters),
// `lost` and `cancelled` the parameters holding kLeaseLost and kCancelledLeaseLost. The SET
// expressions all read the row as it was (standard SQL), so the branches agree.
std::string recover_leases_sql(std::string_view now, std::string_view max_attempts,
                               std::string_view lost, std::string_view cancelled);
// complete()'s status and last_error: a cancel-requested delivery whose outcome is not final
// ends cancelled. `status`, `error` and `prefix` (kCancelledWhileSending) are parameters.
std::string completion_sql(std::string_view status, std::string_view error,
                           std::string_view prefix);

// A claim's preferences from their stored document. A document that does not parse (written by
// hand, or by a newer release) must not fail the whole claim — every delivery of the pool would
// be stuck behind it — so it is logged and read as the defaults: the delivery proceeds as intake
// decided. An empty document (none stored) is the defaults.
Preferences claimed_preferences(std::string_view document);

// Stored text to status ("claimed" reads as queued). Throws std::runtime_error for garbage.
DeliveryStatus status_from_text(std::string_view text);
Channel channel_from_text(std::string_view text);
Priority priority_from_rank(std::int64_t rank);

// The delivery and notification columns both stores select (deliveries `d`, notifications `n`),
// in the order read_delivery() and read_notification() read them.
inline constexpr std::string_view kDeliveryColumns =
    "d.id, d.notification_id, d.channel, d.status, d.attempts, d.last_error, d.due_at, "
    "d.updated_at, d.provider";
inline constexpr int kDeliveryColumnCount = 9;
inline constexpr std::string_view kNotificationColumns =
    "n.id, n.user_id, n.priority, n.category, n.subject, n.body, n.template, n.send_at, "
    "n.idempotency_key, n.fingerprint, n.created_at";
inline constexpr int kNotificationColumnCount = 11;

// A result row of either engine, seen by column index (each store adapts its own row type).
template <class R>
concept StoredRow = requires(const R& row, int column) {
  { row.text(column) } -> std::convertible_to<std::string>;
  { row.int64(column) } -> std::same_as<std::int64_t>;
  { row.is_null(column) } -> std::same_as<bool>;
};

// kDeliveryColumns, from column `at` on.
template <StoredRow R>
Delivery read_delivery(const R& row, int at = 0) {
  Delivery d;
  d.id = row.text(at + 0);
  d.notification_id = row.text(at + 1);
  d.channel = channel_from_text(row.text(at + 2));
  d.status = status_from_text(row.text(at + 3));
  d.attempts = static_cast<int>(row.int64(at + 4));
  d.last_error = row.text(at + 5);
  d.due_at = from_millis(row.int64(at + 6));
  d.updated_at = from_millis(row.int64(at + 7));
  d.provider = row.text(at + 8);
  return d;
}

// kNotificationColumns, from column `at` on (its deliveries are not read).
template <StoredRow R>
Notification read_notification(const R& row, int at = 0) {
  Notification n;
  n.id = row.text(at + 0);
  n.user_id = row.text(at + 1);
  n.priority = priority_from_rank(row.int64(at + 2));
  n.category = row.text(at + 3);
  n.subject = row.text(at + 4);
  n.body = row.text(at + 5);
  n.template_name = row.text(at + 6);
  if (!row.is_null(at + 7)) n.send_at = from_millis(row.int64(at + 7));
  n.idempotency_key = row.text(at + 8);
  n.fingerprint = row.text(at + 9);
  n.created_at = from_millis(row.int64(at + 10));
  return n;
}
// A fresh lease token that names `pool` (pool_of_token reads it back).
std::string new_lease_token(Pool pool);
Pool pool_of_token(std::string_view token) noexcept;
// rules.aging_step in ms; throws std::invalid_argument when not > 0.
std::int64_t aging_millis(const QueueRules& rules);

}  // namespace keel::notifier::internal
