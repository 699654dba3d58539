// Shared by the SQLite and PostgreSQL stores: status and column conversions. Not installed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "case_studies/notification_system/store.h"

namespace keel::notifier::internal {

// Statuses a worker may claim once due, as an SQL list.
inline constexpr std::string_view kPendingStatuses = "('queued', 'scheduled', 'retrying')";
inline constexpr std::string_view kLeasedStatuses = "('claimed', 'sending')";
inline constexpr std::string_view kLeaseLost =
    "lease expired while sending (worker lost); sending again";

// Stored text to status ("claimed" reads as queued). Throws std::runtime_error for garbage.
DeliveryStatus status_from_text(std::string_view text);
Channel channel_from_text(std::string_view text);
Priority priority_from_rank(std::int64_t rank);
std::string new_lease_token();
// rules.aging_step in ms; throws std::invalid_argument when not > 0.
std::int64_t aging_millis(const QueueRules& rules);

}  // namespace keel::notifier::internal
