// keel::notifier::NotificationStore: the durable side of the notifier — notifications, their
// deliveries as a priority queue with leases, idempotency keys, preferences and contacts. One
// port, two implementations run through the same conformance suite (store_conformance.h):
//
//   SqliteNotificationStore    one file, the default; one process (WAL, one connection)
//   PostgresNotificationStore  many worker processes or servers; claims use
//                              SELECT ... FOR UPDATE SKIP LOCKED so that no two take one row
//
// The queue (docs/notification_system.md, "Priority and fairness"):
// - Deliveries live in one of two pools: `critical` (critical priority) and `standard` (high,
//   normal, low). Each pool has its own workers, so no backlog of standard work delays a
//   critical delivery.
// - Within a pool a ready delivery (status queued/scheduled/retrying, due_at <= now) is claimed in
//   order of its sort key, due_at + rank(priority) * aging_step, then insertion order. That is
//   aging: a delivery's effective priority rises one level per aging_step it waits, so a ready
//   high is taken before a ready normal unless the normal has been ready aging_step longer, and
//   a low waits at most about 2 * aging_step behind a steady stream of fresh high ones.
// - A claim is a lease (status "claimed", shown as queued): begin_send() is the re-check right
//   before the provider is called and moves it to "sending" only if it was not cancelled and the
//   lease still holds. A lease that expires (the worker died or hung) puts the delivery back in
//   the queue: claimed → queued, sending → retrying (sent again: at-least-once) — unless the
//   delivery has used its attempts (the lost ones count) → failed, or a cancel was requested
//   while it was sending → cancelled.
// - A cancel cannot stop a delivery already `sending` (the provider may have it), so it marks it
//   cancel_requested: the attempt's outcome is recorded as is when final (sent, failed, skipped),
//   and a delivery that would be tried again (retrying, or held) ends `cancelled` instead.
// - Lease tokens name the pool of their claim, so that a store with a connection pool serves a
//   critical claim's begin_send() and complete() from the connections reserved for critical work.
// - All times are wall-clock milliseconds, so due times survive a restart.
//
// Thread safety: every method is safe to call from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "case_studies/notification_system/model.h"
#include "case_studies/notification_system/preferences.h"
#include "keel/core/clock.h"

namespace keel::notifier {

enum class Pool { critical = 0, standard = 1 };
inline constexpr std::size_t kPoolCount = 2;
std::string_view to_string(Pool pool) noexcept;
inline Pool pool_of(Priority priority) noexcept {
  return priority == Priority::critical ? Pool::critical : Pool::standard;
}

struct QueueRules {
  // A waiting delivery gains one priority level per aging_step (see above). REQUIRES: > 0.
  // Default: 5 minutes.
  Duration aging_step = std::chrono::minutes(5);
};

// The claim order of a delivery: due_at + rank(priority) * aging_step, in milliseconds.
std::int64_t sort_key(Priority priority, WallTime due_at, const QueueRules& rules) noexcept;

struct InsertResult {
  Notification notification;  // the stored one: the new one, or the one holding the key
  bool created = false;       // false: the idempotency key was already held; nothing stored
};

// A delivery leased to a worker, with what the worker needs to send it.
struct Claim {
  Notification notification;  // without deliveries
  Delivery delivery;
  std::string lease_token;
  Contacts contacts = {};        // the user's contacts when claimed
  Preferences preferences = {};  // the user's preferences when claimed
};

// How an attempt ended (complete()).
struct Completion {
  // sent, retrying, failed, skipped, or queued (waiting for an unavailable provider).
  DeliveryStatus status = DeliveryStatus::sent;
  std::string error = {};
  std::string provider = {};
  WallTime due_at = {};         // retrying / queued: when it may be claimed again
  bool refund_attempt = false;  // the attempt does not count (provider unavailable, skipped)
};

enum class RetryResult { retried, not_found, not_failed };

class NotificationStore {
 public:
  virtual ~NotificationStore() = default;

  // Stores `notification` and its deliveries (ids set by the caller) in one transaction. When
  // its idempotency key is non-empty and a notification of the same user created with that key
  // at or after `key_cutoff` exists, stores nothing and returns that one with created = false
  // (keys are scoped per user; older than the cutoff they are forgotten). Each call also purges
  // up to 100 keys older than the cutoff, so the keys table holds about one window's worth.
  virtual InsertResult insert(const Notification& notification, WallTime key_cutoff) = 0;
  // With its deliveries (in channel order of the request); nullopt when unknown.
  virtual std::optional<Notification> find(std::string_view id) = 0;

  // Claims up to `max` ready deliveries of `pool` in claim order, leased until now + lease;
  // first returns expired leases to the queue (see above: a delivery that was sending with
  // attempts >= max_attempts ends failed, a cancel-requested one cancelled). Two callers never
  // get the same delivery while its lease holds. REQUIRES: max_attempts >= 1.
  virtual std::vector<Claim> claim(Pool pool, WallTime now, Duration lease, std::size_t max,
                                   int max_attempts) = 0;
  // claimed → sending, attempts + 1, when `lease_token` still holds the delivery and its lease
  // has not expired at `now`; the lease is renewed to now + lease for the send (a claim that
  // waited in a worker's queue past its lease may have been taken over: it must not be sent
  // as well). Returns the attempt number, or nullopt when it must not be sent (cancelled, or
  // the lease was lost or expired).
  virtual std::optional<int> begin_send(std::string_view delivery_id, std::string_view lease_token,
                                        WallTime now, Duration lease) = 0;
  // sending (or claimed, to give a claim back unsent) → completion.status, releasing the lease;
  // a cancel-requested delivery whose completion is not final (retrying, queued, scheduled)
  // ends cancelled instead, with the attempt's error kept in last_error. Returns the status
  // recorded, or nullopt (and changes nothing) when the lease was lost or the delivery cancelled.
  virtual std::optional<DeliveryStatus> complete(std::string_view delivery_id,
                                                 std::string_view lease_token,
                                                 const Completion& completion, WallTime now) = 0;

  // Cancels the notification's deliveries not yet sending (queued, scheduled, retrying,
  // claimed) and returns their ids; marks those sending cancel_requested (see above: they are
  // not in the list, as the attempt in progress may still send them); nullopt for an unknown
  // notification.
  virtual std::optional<std::vector<std::string>> cancel(std::string_view notification_id,
                                                         WallTime now) = 0;
  // A failed delivery back to the queue, due now, with its attempts reset (and any cancel
  // request cleared: a person asked for it to be sent).
  virtual RetryResult retry(std::string_view delivery_id, WallTime now) = 0;
  // Failed deliveries, most recent first.
  virtual std::vector<Delivery> dead_letters(std::size_t limit) = 0;

  // The earliest time something of `pool` becomes claimable (a due time or a lease expiry);
  // nullopt when nothing waits.
  virtual std::optional<WallTime> next_due(Pool pool) = 0;
  // Deliveries per status (claimed ones counted as queued).
  virtual std::map<DeliveryStatus, std::int64_t> count_by_status() = 0;

  // Defaults (everything allowed, no quiet hours / no contacts) for an unknown user. `lane` is
  // the pool the read is for: intake of a critical notification reads on Pool::critical, so
  // that a database saturated by standard work cannot delay accepting it (the PostgreSQL store
  // serves it from its reserved connections; SQLite has one connection for everything).
  virtual Preferences preferences(std::string_view user_id, Pool lane) = 0;
  // Reads, applies `patch` (which may throw: nothing is stored) and stores, atomically.
  virtual Preferences update_preferences(std::string_view user_id,
                                         const std::function<void(Preferences&)>& patch) = 0;
  virtual Contacts contacts(std::string_view user_id, Pool lane) = 0;
  virtual Contacts update_contacts(std::string_view user_id,
                                   const std::function<void(Contacts&)>& patch) = 0;
};

}  // namespace keel::notifier
