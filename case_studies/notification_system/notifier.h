// keel::notifier::Notifier: the notification pipeline, from a validated request to deliveries
// sent by workers (docs/notification_system.md).
//
//   SqliteNotificationStore store("notifier.db");
//   auto dispatcher = make_dispatcher(config);                  // providers, breakers, failover
//   Notifier notifier(store, *dispatcher, {.events = &bus});
//   notifier.start();
//   SubmitResult r = notifier.submit(parse_notification_request(json, templates));
//
// Intake (submit): dedup by idempotency key (24 h: the same key returns the first notification,
// with another body a conflict) → per channel, the user's preferences: opted out of the channel
// or the category → `skipped` with the reason, unless the category is mandatory; no address for
// the channel → `skipped`; quiet hours in the user's time zone hold non-critical deliveries
// (`scheduled`) until they end; send_at in the future → `scheduled` → one delivery per channel
// into the store's priority queue.
//
// Workers: one pool per priority class (critical, standard), each with its own executor and
// capacity, so critical deliveries never wait behind a standard backlog. A worker claims a
// delivery (a lease), checks the user's preferences again as they are now (opted out since →
// `skipped` with the reason; inside quiet hours → `scheduled` until they end, non-critical
// only), applies the per-user rate limit (over the limit → back to `scheduled`
// until the limiter allows it; not an attempt), re-checks in the store that it was not
// cancelled (begin_send), then calls Dispatcher::send:
//   sent → `sent`; permanent → `failed` (dead letter);
//   transient → `retrying` after 2^attempt s (initial 2 s, doubling, jitter, capped), or the
//   provider's Retry-After when longer (capped by max_retry_after); after max_attempts →
//   `failed`;
//   unavailable (every breaker of the channel open) → `retrying` at the breaker's retry time,
//   not counted as an attempt.
// A cancel that lands while a delivery is `sending` cannot stop that attempt: a success is
// recorded `sent`; an outcome that would try again ends `cancelled` (store.h, cancel_requested).
// A delivery whose worker is lost mid-send is sent again after its lease, and those lost
// attempts count towards max_attempts.
// Every status change is published on the event bus as "notifier.delivery.<status>" (JSON).
//
// Time: the pumps and wake-ups run on `scheduler` and read `clock`; with a ManualScheduler (and
// the same ManualScheduler as both worker executors) the whole pipeline runs on the thread that
// advances the ManualClock, deterministically.
//
// Thread safety: all public members are safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "case_studies/notification_system/dispatcher.h"
#include "case_studies/notification_system/model.h"
#include "case_studies/notification_system/store.h"
#include "keel/core/backoff.h"
#include "keel/core/clock.h"
#include "keel/core/metrics.h"
#include "keel/core/scheduler.h"
#include "keel/pubsub/event_bus.h"
#include "keel/ratelimit/limit.h"

namespace keel::notifier {

struct RetryRules {
  // Provider calls per delivery, the first included. REQUIRES: >= 1. Default: 5.
  int max_attempts = 5;
  // Wait after attempt n is initial * 2^(n-1): 2 s, 4 s, 8 s, ... REQUIRES: > 0. Default: 2 s.
  Duration initial = std::chrono::seconds(2);
  // Cap on one wait. REQUIRES: >= initial. Default: 10 minutes.
  Duration max_delay = std::chrono::minutes(10);
  // Spread of each wait (keel/core/backoff.h). Default: equal (between half and all of it).
  Jitter jitter = Jitter::equal;
  // Cap on a provider's Retry-After. The wait after a transient failure is the larger of the
  // backoff and the provider's Retry-After (capped by this). Default: 1 hour.
  Duration max_retry_after = std::chrono::hours(1);
};

struct WorkerPoolOptions {
  // Where sends run. nullptr = a ThreadPoolScheduler of `threads` threads owned by the Notifier.
  Scheduler* executor = nullptr;
  // Threads of the owned executor. REQUIRES: >= 1. Default: 4.
  std::size_t threads = 4;
  // Deliveries claimed and not finished at once (claimed ahead of a free thread included).
  // 0 = 2 * threads.
  std::size_t max_in_flight = 0;
};

struct NotifierOptions {
  // Time of every decision. Default: the steady clock.
  const Clock* clock = nullptr;
  // Pumps and wake-ups. nullptr = a one-thread ThreadPoolScheduler owned by the Notifier.
  Scheduler* scheduler = nullptr;
  WorkerPoolOptions critical_workers = {.threads = 2};
  WorkerPoolOptions standard_workers = {.threads = 4};
  RetryRules retry = {};
  // Categories that ignore opt-outs. Default: {"security"}.
  std::set<std::string, std::less<>> mandatory_categories = {"security"};
  // Templates the requests may name.
  Templates templates = {};
  // Deliveries per user: a token bucket of 10, refilled at 1 per second. Critical deliveries are
  // not limited unless limit_critical.
  ratelimit::Limit user_limit = {
      .algorithm = ratelimit::Algorithm::token_bucket, .rate_per_second = 1, .amount = 10};
  bool limit_critical = false;
  // A claimed delivery not finished within the lease is claimed again. Default: 60 s.
  Duration lease = std::chrono::seconds(60);
  // How long idempotency keys are remembered. Default: 24 h.
  Duration idempotency_window = std::chrono::hours(24);
  // How often an idle pool looks for work other processes added (several workers on one
  // PostgreSQL); 0 = only when this process adds work or a due time comes. Default: 1 s.
  Duration poll_interval = std::chrono::seconds(1);
  // Status events are published here when set.
  pubsub::EventBus* events = nullptr;
  // keel_notifier_* series are registered here when set.
  MetricsRegistry* metrics = nullptr;
  // Jitter's random source, uniform in [0, 1). Default: a per-thread generator.
  std::function<double()> random = {};
};

enum class SubmitStatus { created, duplicate, conflict };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::created;
  Notification notification;  // duplicate / conflict: the first notification with the key
};

struct CancelResult {
  std::vector<std::string> cancelled;  // delivery ids cancelled by this call
  Notification notification;           // after the cancel
};

// Counters since construction; exact under concurrency.
struct NotifierMetrics {
  std::uint64_t accepted = 0;      // notifications stored
  std::uint64_t duplicates = 0;    // same idempotency key and body
  std::uint64_t conflicts = 0;     // same key, another body
  std::uint64_t sent = 0;          // deliveries sent
  std::uint64_t failed = 0;        // deliveries failed (dead letters)
  std::uint64_t retried = 0;       // transient failures rescheduled
  std::uint64_t unavailable = 0;   // waits for an open breaker
  std::uint64_t skipped = 0;       // skipped at intake or at send time
  std::uint64_t rate_limited = 0;  // held by the per-user limit
  std::uint64_t cancel_won = 0;    // found cancelled by the re-check, or cancelled mid-send
                                   // and not sent (not retried)
  std::uint64_t lease_lost = 0;    // a result not recorded because another worker took over
};

class Notifier {
 public:
  // `store` and `dispatcher` (and every pointer in options) must outlive the Notifier. Throws
  // std::invalid_argument for invalid options. Workers start with start().
  Notifier(NotificationStore& store, Dispatcher& dispatcher, NotifierOptions options = {});
  // stop().
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Starts claiming: work already in the store (after a restart) is picked up.
  void start();
  // Stops claiming and waits for the sends in progress on owned executors (external executors
  // must be drained by their owner, and must not run this Notifier's tasks after it is gone).
  // Deliveries claimed and not sent go back to the queue when their lease expires. Idempotent;
  // a stopped Notifier does not start again (make a new one).
  void stop();

  // Runs intake for a validated request. Throws keel::BackendError when the store fails.
  SubmitResult submit(const NotificationRequest& request);
  std::optional<Notification> find(std::string_view id);
  // nullopt for an unknown notification.
  std::optional<CancelResult> cancel(std::string_view id);
  // Puts a failed delivery back in the queue.
  RetryResult retry(std::string_view delivery_id);

  NotificationStore& store() noexcept { return store_; }
  const NotifierOptions& options() const noexcept { return options_; }
  NotifierMetrics metrics() const;

 private:
  struct WorkerPool;
  struct State;
  void request_pump(WorkerPool& pool);
  void pump(WorkerPool& pool);
  void wake_at(WorkerPool& pool, WallTime at);
  void process(WorkerPool& pool, const Claim& claim);
  bool apply_preferences(WorkerPool& pool, const Claim& claim);
  bool hold_for_rate_limit(WorkerPool& pool, const Claim& claim);
  Completion decide(const DispatchResult& result, const Claim& claim, int attempt, WallTime now);
  void publish(const Claim& claim, DeliveryStatus status, int attempts, const std::string& error);

  // Whether this Notifier still exists, for the tasks it left on schedulers it does not own
  // (the destructor waits for those running, and the later ones do nothing).
  struct Life;
  class Visit;

  NotificationStore& store_;
  Dispatcher& dispatcher_;
  NotifierOptions options_;
  std::unique_ptr<State> state_;
  std::shared_ptr<Life> life_;
};

}  // namespace keel::notifier
