// Shared by the SQLite and PostgreSQL stores: status and column conversions. Not installed.
#pragma once

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
// A fresh lease token that names `pool` (pool_of_token reads it back).
std::string new_lease_token(Pool pool);
Pool pool_of_token(std::string_view token) noexcept;
// rules.aging_step in ms; throws std::invalid_argument when not > 0.
std::int64_t aging_millis(const QueueRules& rules);

}  // namespace keel::notifier::internal
