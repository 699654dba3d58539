#include "case_studies/notification_system/notifier.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "case_studies/notification_system/preferences.h"
#include "case_studies/notification_system/store_internal.h"
#include "keel/core/internal/log.h"
#include "keel/ratelimit/keyed_rate_limiter.h"

namespace keel::notifier {

namespace {

constexpr std::array<DeliveryStatus, 8> kAllStatuses = {
    DeliveryStatus::queued,  DeliveryStatus::scheduled, DeliveryStatus::sending,
    DeliveryStatus::sent,    DeliveryStatus::retrying,  DeliveryStatus::failed,
    DeliveryStatus::skipped, DeliveryStatus::cancelled};

void validate(const NotifierOptions& options) {
  const RetryRules& r = options.retry;
  if (r.max_attempts < 1)
    throw std::invalid_argument("NotifierOptions: retry.max_attempts must be >= 1");
  if (r.initial <= Duration::zero())
    throw std::invalid_argument("NotifierOptions: retry.initial must be > 0");
  if (r.max_delay < r.initial) {
    throw std::invalid_argument("NotifierOptions: retry.max_delay must be >= retry.initial");
  }
  if (options.critical_workers.threads == 0 || options.standard_workers.threads == 0) {
    throw std::invalid_argument("NotifierOptions: worker threads must be >= 1");
  }
  if (options.lease <= Duration::zero())
    throw std::invalid_argument("NotifierOptions: lease must be > 0");
  if (options.poll_interval < Duration::zero()) {
    throw std::invalid_argument("NotifierOptions: poll_interval must be >= 0");
  }
  options.user_limit.validate();
}

std::string describe_time(WallTime at) { return format_time(at); }

// Why the user does not want `channel` for `category` ("" when they do), at intake and again
// before each attempt (preferences may change while a delivery waits).
std::string opt_out_reason(const Preferences& preferences, Channel channel,
                           std::string_view category, bool mandatory) {
  if (mandatory) return {};
  if (!preferences.allows_channel(channel)) {
    return fmt::format("user opted out of {}", to_string(channel));
  }
  if (!preferences.allows_category(category)) {
    return fmt::format("user opted out of category {}", category);
  }
  return {};
}

std::string quiet_hours_reason(const QuietHours& quiet, WallTime end) {
  return fmt::format("quiet hours ({}) until {}", quiet.time_zone, describe_time(end));
}

}  // namespace

struct Notifier::WorkerPool {
  keel::notifier::Pool kind = keel::notifier::Pool::standard;
  Scheduler* executor = nullptr;
  std::unique_ptr<ThreadPoolScheduler> owned;
  std::size_t capacity = 0;
  std::mutex mu;
  std::size_t in_flight = 0;           // GUARDED_BY(mu)
  bool pump_queued = false;            // GUARDED_BY(mu)
  TaskHandle wakeup;                   // GUARDED_BY(mu)
  std::optional<TimePoint> wakeup_at;  // GUARDED_BY(mu)
};

struct Notifier::State {
  State(const NotifierOptions& options, const Clock& c)
      : clock(c), limiter(options.user_limit, {}, c) {}

  const Clock& clock;
  Scheduler* scheduler = nullptr;
  std::unique_ptr<ThreadPoolScheduler> owned_scheduler;
  std::array<WorkerPool, kPoolCount> pools;
  ratelimit::KeyedRateLimiter limiter;
  std::atomic<bool> running{false};
  std::mutex stop_mu;

  std::atomic<std::uint64_t> accepted{0}, duplicates{0}, conflicts{0}, sent{0}, failed{0},
      retried{0}, unavailable{0}, skipped{0}, rate_limited{0}, cancel_won{0}, lease_lost{0};
  std::array<Histogram*, 4> latency{};  // accept → sent, per priority (when metrics are set)
  std::vector<Subscription> series;

  TimePoint to_steady(WallTime at) const {
    const Duration ahead = std::chrono::duration_cast<Duration>(at - clock.wall_now());
    return clock.now() + std::max(ahead, Duration::zero());
  }
};

Notifier::Notifier(NotificationStore& store, Dispatcher& dispatcher, NotifierOptions options)
    : store_(store),
      dispatcher_(dispatcher),
      options_(std::move(options)),
      life_(std::make_shared<Life>()) {
  validate(options_);
  const Clock& clock = options_.clock != nullptr ? *options_.clock : default_clock();
  state_ = std::make_unique<State>(options_, clock);
  state_->scheduler = options_.scheduler;
  if (state_->scheduler == nullptr) {
    state_->owned_scheduler = std::make_unique<ThreadPoolScheduler>(1, clock);
    state_->scheduler = state_->owned_scheduler.get();
  }
  const auto set_up = [&](WorkerPool& pool, keel::notifier::Pool kind, const WorkerPoolOptions& o) {
    pool.kind = kind;
    pool.executor = o.executor;
    if (pool.executor == nullptr) {
      pool.owned = std::make_unique<ThreadPoolScheduler>(o.threads, clock);
      pool.executor = pool.owned.get();
    }
    pool.capacity = o.max_in_flight != 0 ? o.max_in_flight : 2 * o.threads;
  };
  set_up(state_->pools[0], keel::notifier::Pool::critical, options_.critical_workers);
  set_up(state_->pools[1], keel::notifier::Pool::standard, options_.standard_workers);

  if (MetricsRegistry* registry = options_.metrics) {
    const auto counter = [&](std::string_view name, std::string_view help, const Labels& labels,
                             const std::atomic<std::uint64_t>& value) {
      state_->series.push_back(registry->counter_fn(name, help, labels, [&value] {
        return static_cast<double>(value.load(std::memory_order_relaxed));
      }));
    };
    State& s = *state_;
    constexpr std::string_view kNotifications = "keel_notifier_notifications_total";
    constexpr std::string_view kNotificationsHelp = "Notifications received, by outcome";
    counter(kNotifications, kNotificationsHelp, {{"outcome", "accepted"}}, s.accepted);
    counter(kNotifications, kNotificationsHelp, {{"outcome", "duplicate"}}, s.duplicates);
    counter(kNotifications, kNotificationsHelp, {{"outcome", "conflict"}}, s.conflicts);
    constexpr std::string_view kEvents = "keel_notifier_delivery_events_total";
    constexpr std::string_view kEventsHelp = "Delivery outcomes recorded by this process's workers";
    counter(kEvents, kEventsHelp, {{"event", "sent"}}, s.sent);
    counter(kEvents, kEventsHelp, {{"event", "failed"}}, s.failed);
    counter(kEvents, kEventsHelp, {{"event", "retried"}}, s.retried);
    counter(kEvents, kEventsHelp, {{"event", "unavailable"}}, s.unavailable);
    counter(kEvents, kEventsHelp, {{"event", "skipped"}}, s.skipped);
    counter(kEvents, kEventsHelp, {{"event", "rate_limited"}}, s.rate_limited);
    counter(kEvents, kEventsHelp, {{"event", "cancel_won"}}, s.cancel_won);
    counter(kEvents, kEventsHelp, {{"event", "lease_lost"}}, s.lease_lost);
    // Deliveries in the store per status, read at scrape time (one query per scrape).
    struct Snapshot {
      std::mutex mu;
      std::map<DeliveryStatus, std::int64_t> counts;
    };
    auto snapshot = std::make_shared<Snapshot>();
    for (const DeliveryStatus status : kAllStatuses) {
      const bool first = status == kAllStatuses.front();
      s.series.push_back(registry->gauge_fn(
          "keel_notifier_deliveries", "Deliveries in the store, by status",
          {{"status", std::string(to_string(status))}}, [this, snapshot, status, first] {
            std::lock_guard lock(snapshot->mu);
            if (first) snapshot->counts = store_.count_by_status();
            const auto found = snapshot->counts.find(status);
            return found == snapshot->counts.end() ? 0.0 : static_cast<double>(found->second);
          }));
    }
    for (std::size_t p = 0; p < s.latency.size(); ++p) {
      s.latency[p] = &registry->histogram(
          "keel_notifier_accept_to_sent_seconds", "From acceptance to the provider's success",
          Histogram::exponential_buckets(0.001, 4, 10),
          {{"priority", std::string(to_string(static_cast<Priority>(p)))}});
    }
  }
}

struct Notifier::Life {
  std::mutex mu;
  std::condition_variable idle;
  bool alive = true;    // GUARDED_BY(mu)
  int running = 0;      // GUARDED_BY(mu): tasks inside a Visit
};

// A task's visit to the Notifier: `ok()` is false once the Notifier is gone; while a visit is
// open the destructor waits.
class Notifier::Visit {
 public:
  explicit Visit(std::shared_ptr<Life> life) : life_(std::move(life)) {
    std::lock_guard lock(life_->mu);
    ok_ = life_->alive;
    if (ok_) ++life_->running;
  }
  ~Visit() {
    if (!ok_) return;
    std::lock_guard lock(life_->mu);
    if (--life_->running == 0) life_->idle.notify_all();
  }
  Visit(const Visit&) = delete;
  Visit& operator=(const Visit&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  std::shared_ptr<Life> life_;
  bool ok_ = false;
};

Notifier::~Notifier() {
  stop();
  // Tasks still queued on schedulers this Notifier does not own (options.scheduler, a pool's
  // executor) may run later: they find it gone and do nothing.
  std::unique_lock lock(life_->mu);
  life_->alive = false;
  life_->idle.wait(lock, [&] { return life_->running == 0; });
}

void Notifier::start() {
  if (state_->running.exchange(true)) return;
  for (WorkerPool& pool : state_->pools) request_pump(pool);
}

void Notifier::stop() {
  std::lock_guard stop_lock(state_->stop_mu);
  state_->running.store(false);
  for (WorkerPool& pool : state_->pools) {
    std::lock_guard lock(pool.mu);
    pool.wakeup.cancel();
  }
  if (state_->owned_scheduler) state_->owned_scheduler->shutdown(ShutdownMode::cancel);
  for (WorkerPool& pool : state_->pools) {
    if (pool.owned) pool.owned->shutdown(ShutdownMode::drain);
  }
}

SubmitResult Notifier::submit(const NotificationRequest& request) {
  const WallTime now = state_->clock.wall_now();
  Notification n;
  n.id = new_notification_id();
  n.user_id = request.user_id;
  n.priority = request.priority;
  n.category = request.category;
  n.subject = request.subject;
  n.body = request.body;
  n.template_name = request.template_name;
  n.send_at = request.send_at;
  n.idempotency_key = request.idempotency_key;
  n.fingerprint = request.fingerprint();
  n.created_at = now;

  const Pool lane = pool_of(request.priority);  // a critical intake reads on reserved connections
  const Preferences preferences = store_.preferences(request.user_id, lane);
  const Contacts contacts = store_.contacts(request.user_id, lane);
  const bool mandatory = options_.mandatory_categories.contains(request.category);
  WallTime due = now;
  std::string hold_reason;
  if (request.send_at && *request.send_at > now) {
    due = *request.send_at;
    hold_reason = fmt::format("scheduled for {}", describe_time(due));
  }
  if (request.priority != Priority::critical && preferences.quiet_hours) {
    if (const auto end = quiet_hours_end(*preferences.quiet_hours, due)) {
      due = *end;
      hold_reason = quiet_hours_reason(*preferences.quiet_hours, due);
    }
  }
  for (const Channel channel : request.channels) {
    Delivery d;
    d.id = new_delivery_id();
    d.notification_id = n.id;
    d.channel = channel;
    d.due_at = due;
    d.updated_at = now;
    if (std::string reason = opt_out_reason(preferences, channel, request.category, mandatory);
        !reason.empty()) {
      d.status = DeliveryStatus::skipped;
      d.last_error = std::move(reason);
    } else if (contact_for(contacts, channel).empty()) {
      d.status = DeliveryStatus::skipped;
      d.last_error = fmt::format("no {} for user {}", contact_name(channel), request.user_id);
    } else if (due > now) {
      d.status = DeliveryStatus::scheduled;
      d.last_error = hold_reason;
    }
    n.deliveries.push_back(std::move(d));
  }

  InsertResult stored = store_.insert(n, now - options_.idempotency_window);
  if (!stored.created) {
    const bool same = stored.notification.fingerprint == n.fingerprint;
    (same ? state_->duplicates : state_->conflicts).fetch_add(1);
    return {same ? SubmitStatus::duplicate : SubmitStatus::conflict,
            std::move(stored.notification)};
  }
  state_->accepted.fetch_add(1);
  for (const Delivery& d : stored.notification.deliveries) {
    if (d.status == DeliveryStatus::skipped) {
      state_->skipped.fetch_add(1);
      publish({stored.notification, d, {}, {}}, d.status, 0, d.last_error);
    }
  }
  WorkerPool& pool = state_->pools[static_cast<std::size_t>(pool_of(n.priority))];
  if (due > now) {
    wake_at(pool, due);
  } else {
    request_pump(pool);
  }
  return {SubmitStatus::created, std::move(stored.notification)};
}

std::optional<Notification> Notifier::find(std::string_view id) { return store_.find(id); }

std::optional<CancelResult> Notifier::cancel(std::string_view id) {
  std::optional<std::vector<std::string>> cancelled = store_.cancel(id, state_->clock.wall_now());
  if (!cancelled) return std::nullopt;
  std::optional<Notification> n = store_.find(id);
  if (!n) return std::nullopt;
  for (const Delivery& d : n->deliveries) {
    if (std::find(cancelled->begin(), cancelled->end(), d.id) != cancelled->end()) {
      publish({*n, d, {}, {}}, DeliveryStatus::cancelled, d.attempts, "cancelled");
    }
  }
  return CancelResult{std::move(*cancelled), std::move(*n)};
}

RetryResult Notifier::retry(std::string_view delivery_id) {
  const RetryResult result = store_.retry(delivery_id, state_->clock.wall_now());
  if (result == RetryResult::retried) {
    for (WorkerPool& pool : state_->pools) request_pump(pool);
  }
  return result;
}

NotifierMetrics Notifier::metrics() const {
  const State& s = *state_;
  return {s.accepted.load(),     s.duplicates.load(), s.conflicts.load(),   s.sent.load(),
          s.failed.load(),       s.retried.load(),    s.unavailable.load(), s.skipped.load(),
          s.rate_limited.load(), s.cancel_won.load(), s.lease_lost.load()};
}

void Notifier::request_pump(WorkerPool& pool) {
  if (!state_->running.load()) return;
  {
    std::lock_guard lock(pool.mu);
    if (pool.pump_queued) return;
    pool.pump_queued = true;
  }
  // On the pool's own executor: a critical pump never waits behind a standard one.
  pool.executor->schedule_at(state_->clock.now(), [this, &pool, life = life_] {
    const Visit visit(life);
    if (visit.ok()) pump(pool);
  });
}

void Notifier::wake_at(WorkerPool& pool, WallTime at) {
  if (!state_->running.load()) return;
  const TimePoint due = state_->to_steady(at);
  std::lock_guard lock(pool.mu);
  // Again under the lock: stop() clears `running` and then cancels the wakeups under pool.mu,
  // so a wakeup scheduled after that (which would outlive the Notifier) is never made.
  if (!state_->running.load()) return;
  if (pool.wakeup.pending() && pool.wakeup_at && *pool.wakeup_at <= due) return;
  pool.wakeup.cancel();
  pool.wakeup_at = due;
  pool.wakeup = state_->scheduler->schedule_at(due, [this, &pool, life = life_] {
    const Visit visit(life);
    if (visit.ok()) request_pump(pool);
  });
}

void Notifier::pump(WorkerPool& pool) {
  std::size_t slots = 0;
  {
    std::lock_guard lock(pool.mu);
    pool.pump_queued = false;
    if (!state_->running.load() || pool.in_flight >= pool.capacity) return;
    slots = pool.capacity - pool.in_flight;
    pool.in_flight += slots;  // reserved while claiming
  }
  const WallTime now = state_->clock.wall_now();
  std::vector<Claim> claims;
  std::optional<WallTime> next;
  try {
    claims = store_.claim(pool.kind, now, options_.lease, slots, options_.retry.max_attempts);
    if (claims.size() < slots) next = store_.next_due(pool.kind);
  } catch (const std::exception& e) {
    // The store is unreachable: look again in a second (or at the next poll), whatever is due.
    keel::internal::logger().warn("notifier: claiming {} deliveries failed: {}",
                                  to_string(pool.kind), e.what());
    next = now + std::max<Duration>(options_.poll_interval, std::chrono::seconds(1));
  }
  {
    std::lock_guard lock(pool.mu);
    pool.in_flight -= slots - claims.size();
  }
  for (Claim& claim : claims) {
    pool.executor->schedule_at(state_->clock.now(), [this, &pool, c = std::move(claim),
                                                     life = life_] {
      const Visit visit(life);
      if (!visit.ok()) return;  // the lease expires and the delivery is claimed again
      try {
        process(pool, c);
      } catch (const std::exception& e) {
        // The lease expires and the delivery is claimed again.
        keel::internal::logger().warn("notifier: delivery {} failed in the pipeline: {}",
                                      c.delivery.id, e.what());
      }
      bool refill = false;
      {
        std::lock_guard lock(pool.mu);
        --pool.in_flight;
        // Claim in batches: once half the capacity is free (one query for several deliveries).
        refill = pool.in_flight <= pool.capacity / 2;
      }
      if (refill) request_pump(pool);
    });
  }
  if (claims.size() == slots) return;  // the next finished send pumps again
  WallTime wake = now + options_.poll_interval;
  if (options_.poll_interval == Duration::zero() || (next && *next < wake)) {
    if (!next) return;
    wake = *next;
  }
  // Something due now that this claim missed (a lease just expiring): look again shortly.
  if (wake <= now) wake = now + std::chrono::milliseconds(1);
  wake_at(pool, wake);
}

bool Notifier::hold_for_rate_limit(WorkerPool& pool, const Claim& claim) {
  if (claim.notification.priority == Priority::critical && !options_.limit_critical) return false;
  const ratelimit::Decision decision = state_->limiter.try_acquire(claim.notification.user_id);
  if (decision.allowed) return false;
  const WallTime now = state_->clock.wall_now();
  const Duration wait =
      decision.retry_after == Duration::max() ? std::chrono::hours(1) : decision.retry_after;
  const WallTime until = now + std::chrono::duration_cast<WallTime::duration>(wait);
  const std::string reason =
      fmt::format("over the user's rate limit; held until {}", describe_time(until));
  if (store_.complete(claim.delivery.id, claim.lease_token,
                      {.status = DeliveryStatus::scheduled, .error = reason, .due_at = until},
                      now)) {
    // Only a claim (never a cancel-requested send) is given back here: it stays scheduled.
    state_->rate_limited.fetch_add(1);
    publish(claim, DeliveryStatus::scheduled, claim.delivery.attempts, reason);
  }
  wake_at(pool, until);
  return true;
}

bool Notifier::apply_preferences(WorkerPool& pool, const Claim& claim) {
  const Notification& n = claim.notification;
  const WallTime now = state_->clock.wall_now();
  Completion held;
  std::string reason = opt_out_reason(claim.preferences, claim.delivery.channel, n.category,
                                      options_.mandatory_categories.contains(n.category));
  if (!reason.empty()) {
    held = {.status = DeliveryStatus::skipped,
            .error = std::move(reason),
            .due_at = claim.delivery.due_at};
  } else if (n.priority != Priority::critical && claim.preferences.quiet_hours) {
    const std::optional<WallTime> end = quiet_hours_end(*claim.preferences.quiet_hours, now);
    if (!end) return false;
    held = {.status = DeliveryStatus::scheduled,
            .error = quiet_hours_reason(*claim.preferences.quiet_hours, *end),
            .due_at = *end};
  } else {
    return false;
  }
  // Given back from `claimed` (no attempt was begun): nothing to refund.
  if (store_.complete(claim.delivery.id, claim.lease_token, held, now)) {
    if (held.status == DeliveryStatus::skipped) state_->skipped.fetch_add(1);
    publish(claim, held.status, claim.delivery.attempts, held.error);
  }
  if (held.status == DeliveryStatus::scheduled) wake_at(pool, held.due_at);
  return true;
}

void Notifier::process(WorkerPool& pool, const Claim& claim) {
  // Preferences first: a delivery the user no longer wants takes no rate-limit token.
  if (apply_preferences(pool, claim)) return;
  if (hold_for_rate_limit(pool, claim)) return;
  // The re-check right before sending: a cancel that landed after the claim wins here.
  const std::optional<int> attempt =
      store_.begin_send(claim.delivery.id, claim.lease_token, state_->clock.wall_now(),
                        options_.lease);
  if (!attempt) {
    state_->cancel_won.fetch_add(1);
    return;
  }
  publish(claim, DeliveryStatus::sending, *attempt, {});
  const Contacts& contacts = claim.contacts;
  Completion completion;
  if (contact_for(contacts, claim.delivery.channel).empty()) {
    completion = {.status = DeliveryStatus::skipped,
                  .error = fmt::format("no {} for user {}", contact_name(claim.delivery.channel),
                                       claim.notification.user_id),
                  .refund_attempt = true};
  } else {
    Message message{.notification_id = claim.notification.id,
                    .delivery_id = claim.delivery.id,
                    .idempotency_key = claim.delivery.id,
                    .channel = claim.delivery.channel,
                    .user_id = claim.notification.user_id,
                    .to = contacts,
                    .category = claim.notification.category,
                    .priority = std::string(to_string(claim.notification.priority)),
                    .subject = claim.notification.subject,
                    .body = claim.notification.body,
                    .attempt = *attempt};
    DispatchResult result;
    try {
      result = dispatcher_.send(message);
    } catch (const std::exception& e) {
      result = DispatchResult{.kind = DispatchResult::Kind::transient};
      result.send.outcome = SendOutcome::transient;
      result.send.error = fmt::format("provider threw: {}", e.what());
      keel::internal::logger().warn("notifier: dispatcher threw for {}: {}", claim.delivery.id,
                                    e.what());
    }
    completion = decide(result, claim, *attempt, state_->clock.wall_now());
  }
  const WallTime now = state_->clock.wall_now();
  // A final status keeps the due time it was sent at.
  if (completion.due_at == WallTime{}) completion.due_at = claim.delivery.due_at;
  const std::optional<DeliveryStatus> recorded =
      store_.complete(claim.delivery.id, claim.lease_token, completion, now);
  if (!recorded) {
    state_->lease_lost.fetch_add(1);
    return;
  }
  const int attempts = completion.refund_attempt ? *attempt - 1 : *attempt;
  if (*recorded == DeliveryStatus::cancelled) {
    // Cancelled while this attempt ran, and the attempt did not send it: not tried again.
    state_->cancel_won.fetch_add(1);
    publish(claim, DeliveryStatus::cancelled, attempts,
            fmt::format("{}{}", internal::kCancelledWhileSending, completion.error));
    return;
  }
  switch (completion.status) {
    case DeliveryStatus::sent: {
      state_->sent.fetch_add(1);
      if (Histogram* h = state_->latency[static_cast<std::size_t>(claim.notification.priority)]) {
        h->observe(std::chrono::duration_cast<Duration>(now - claim.notification.created_at));
      }
      break;
    }
    case DeliveryStatus::failed:
      state_->failed.fetch_add(1);
      break;
    case DeliveryStatus::skipped:
      state_->skipped.fetch_add(1);
      break;
    case DeliveryStatus::retrying:
      (completion.refund_attempt ? state_->unavailable : state_->retried).fetch_add(1);
      wake_at(pool, completion.due_at);
      break;
    default:
      break;
  }
  publish(claim, completion.status, attempts, completion.error);
}

Completion Notifier::decide(const DispatchResult& result, const Claim& claim, int attempt,
                            WallTime now) {
  using Kind = DispatchResult::Kind;
  const RetryRules& rules = options_.retry;
  switch (result.kind) {
    case Kind::sent:
      return {.status = DeliveryStatus::sent, .provider = result.provider};
    case Kind::permanent:
      return {.status = DeliveryStatus::failed,
              .error = fmt::format("{}: {}", result.provider, result.send.error),
              .provider = result.provider};
    case Kind::unavailable: {
      WallTime until = now + std::chrono::seconds(1);
      if (result.retry_at) {
        until = now + std::chrono::duration_cast<WallTime::duration>(
                          std::max(*result.retry_at - state_->clock.now(), Duration::zero()));
      }
      return {
          .status = DeliveryStatus::retrying,
          .error = fmt::format("every {} provider is unavailable (circuit open); waiting until {}",
                               to_string(claim.delivery.channel), describe_time(until)),
          .due_at = until,
          .refund_attempt = true};
    }
    case Kind::transient:
      break;
  }
  const std::string error = fmt::format(
      "{}: {}", result.provider.empty() ? "provider" : result.provider, result.send.error);
  if (attempt >= rules.max_attempts) {
    return {.status = DeliveryStatus::failed,
            .error = fmt::format("gave up after {} attempts; last: {}", attempt, error),
            .provider = result.provider};
  }
  Duration delay{};
  Backoff backoff({.initial = rules.initial,
                   .multiplier = 2.0,
                   .max_delay = rules.max_delay,
                   .max_attempts = 0,
                   .jitter = rules.jitter},
                  options_.random);
  for (int i = 0; i < attempt; ++i) delay = *backoff.next();
  if (result.send.retry_after) {
    // The provider's Retry-After is a floor, never a reason to come back sooner than our own
    // backoff (a "Retry-After: 0" storm would otherwise bypass it); capped so that one answer
    // cannot park a delivery for days.
    delay = std::max<Duration>(delay,
                               std::min<Duration>(*result.send.retry_after, rules.max_retry_after));
  }
  const WallTime due = now + std::chrono::duration_cast<WallTime::duration>(delay);
  return {.status = DeliveryStatus::retrying,
          .error = fmt::format("{} (attempt {}; next at {})", error, attempt, describe_time(due)),
          .provider = result.provider,
          .due_at = due};
}

void Notifier::publish(const Claim& claim, DeliveryStatus status, int attempts,
                       const std::string& error) {
  if (options_.events == nullptr) return;
  try {
    options_.events->publish_json(
        fmt::format("notifier.delivery.{}", to_string(status)),
        boost::json::object{{"notification_id", claim.notification.id},
                            {"delivery_id", claim.delivery.id},
                            {"user_id", claim.notification.user_id},
                            {"channel", to_string(claim.delivery.channel)},
                            {"priority", to_string(claim.notification.priority)},
                            {"status", to_string(status)},
                            {"attempts", attempts},
                            {"error", error},
                            {"at", format_time(state_->clock.wall_now())}});
  } catch (const std::exception& e) {
    keel::internal::logger().warn("notifier: publishing a status event failed: {}", e.what());
  }
}

}  // namespace keel::notifier
