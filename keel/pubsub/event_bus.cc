#include "keel/pubsub/event_bus.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "keel/core/call_gate.h"
#include "keel/core/internal/log.h"
#include "keel/pubsub/internal/topic_trie.h"
#include "keel/pubsub/transport.h"

namespace keel::pubsub {
namespace {

using Id = internal::TopicTrie::Id;
using MessagePtr = std::shared_ptr<const Message>;

// A subscription name as one valid topic token.
std::string as_token(std::string_view name) {
  std::string token;
  for (char c : name) {
    const bool ok = c > 0x20 && c < 0x7f && c != '.' && c != '*' && c != '#' && c != '>';
    token += ok ? c : '_';
  }
  return token.empty() ? "unnamed" : token;
}

// The wait before attempt `number + 1` under `policy`.
Duration retry_delay(const BackoffPolicy& policy, int number) {
  Backoff backoff(policy);
  Duration delay{};
  for (int i = 0; i < number; ++i) delay = backoff.next().value_or(delay);
  return delay;
}

// One message on its way to one subscription.
struct Envelope {
  MessagePtr message;
  // Set when the message came from a transport that redelivers it until it is settled.
  std::shared_ptr<Acknowledgement> acknowledgement = nullptr;
  // The attempt the next delivery is: 1, or the transport's redelivery count.
  int attempt = 1;
};

}  // namespace

PublishFailed::PublishFailed(std::string topic, std::vector<std::string> subscriptions)
    : std::runtime_error(fmt::format("publish to '{}': the queue of {} was full", topic,
                                     fmt::join(subscriptions, ", "))),
      subscriptions_(std::move(subscriptions)) {}

struct Sub {
  Id id = 0;
  std::string name;
  std::string pattern;
  Handler handler;
  Delivery delivery = Delivery::synchronous;
  std::size_t capacity = 0;
  OverflowPolicy overflow = OverflowPolicy::block;
  BackoffPolicy retry;
  CallGate gate;

  std::mutex queue_mutex;
  std::condition_variable not_full;
  std::deque<Envelope> queue;  // guarded by queue_mutex
  bool scheduled = false;      // in the ready list, running, or waiting for a retry; guarded
  bool ending = false;         // queues nothing more (the subscription is ending); guarded
  std::atomic<std::uint64_t> delivered{0}, failed{0}, dropped{0};
  // With a transport: this subscription's subscription there. Ended by whoever removes the Sub
  // from EventBus::Impl::subs (its Subscription, or the bus's destructor).
  Subscription remote;
};
using SubPtr = std::shared_ptr<Sub>;

struct EventBus::Impl : std::enable_shared_from_this<EventBus::Impl> {
  explicit Impl(BusOptions o)
      : options(std::move(o)), clock(options.clock != nullptr ? *options.clock : default_clock()) {
    if (options.workers == 0) throw std::invalid_argument("BusOptions.workers must be >= 1, got 0");
    if (options.dead_letter_topic) validate_topic(*options.dead_letter_topic);
    if (options.scheduler == nullptr)
      owned_scheduler = std::make_unique<ThreadPoolScheduler>(1, clock);
  }

  BusOptions options;
  const Clock& clock;
  std::unique_ptr<ThreadPoolScheduler> owned_scheduler;
  Scheduler& scheduler() {
    return options.scheduler != nullptr ? *options.scheduler : *owned_scheduler;
  }

  mutable std::shared_mutex index_mutex;
  internal::TopicTrie trie;             // guarded by index_mutex
  std::unordered_map<Id, SubPtr> subs;  // guarded by index_mutex
  Id next_id = 1;                       // guarded by index_mutex

  std::atomic<std::uint64_t> sequence{0};
  std::atomic<std::uint64_t> published{0}, delivered{0}, failed{0}, retried{0}, dead_lettered{0},
      dropped{0};

  // Asynchronous delivery.
  std::mutex ready_mutex;
  std::condition_variable ready_cv;
  std::deque<SubPtr> ready;  // guarded by ready_mutex
  bool stopping = false;     // guarded by ready_mutex
  std::vector<std::thread> workers;
  std::once_flag workers_started;
  // For flush(): messages queued, and handlers running on workers.
  std::mutex flush_mutex;
  std::condition_variable flush_cv;
  std::size_t queued = 0, running = 0;  // guarded by flush_mutex

  void start_workers() {
    std::call_once(workers_started, [this] {
      for (std::size_t i = 0; i < options.workers; ++i) workers.emplace_back([this] { work(); });
    });
  }

  void stop() {
    std::vector<SubPtr> all;
    {
      std::unique_lock lock(index_mutex);
      for (auto& [id, sub] : subs) all.push_back(sub);
      subs.clear();
    }
    for (auto& sub : all) {
      stop_remote(*sub);
      close(*sub);
    }
    {
      std::lock_guard lock(ready_mutex);
      stopping = true;
    }
    ready_cv.notify_all();
    for (auto& worker : workers) worker.join();
    if (owned_scheduler) owned_scheduler->shutdown(ShutdownMode::cancel);
  }

  // Stops deliveries to `sub` (waiting for running ones elsewhere) and drops its backlog; a
  // transport that redelivers gets its messages back instead.
  void close(Sub& sub) {
    sub.gate.close();
    std::deque<Envelope> backlog;
    {
      std::lock_guard lock(sub.queue_mutex);
      backlog.swap(sub.queue);
    }
    sub.not_full.notify_all();
    if (backlog.empty()) return;
    adjust_queued(-static_cast<long>(backlog.size()), 0);
    std::size_t lost = 0;
    for (const Envelope& envelope : backlog) {
      if (!give_back(envelope)) ++lost;
    }
    if (lost > 0) {
      count_dropped(sub, lost);
      keel::internal::logger().warn("pubsub: subscription '{}' ended with {} queued message(s)",
                                    sub.name, lost);
    }
  }

  // A message its subscription will not handle goes back to a transport that redelivers it (to
  // the subscription's next holder). False when there is none: the caller drops it, counted.
  static bool give_back(const Envelope& envelope) {
    if (!envelope.acknowledgement) return false;
    envelope.acknowledgement->nak(Duration::zero());
    return true;
  }

  // Returns the subscription's drops so far.
  std::uint64_t count_dropped(Sub& sub, std::size_t n) {
    dropped += n;
    return sub.dropped += n;
  }

  // An overloaded subscription drops thousands of messages a second: one warning each would
  // bury the log (and slow the publisher down), so drops are logged at 1, 2, 4, 8, ... The
  // counters (stats(), /metrics) still see every one.
  static bool worth_logging(std::uint64_t dropped_so_far) {
    return dropped_so_far != 0 && (dropped_so_far & (dropped_so_far - 1)) == 0;
  }

  void adjust_queued(long queued_delta, long running_delta) {
    bool idle = false;
    {
      std::lock_guard lock(flush_mutex);
      queued = static_cast<std::size_t>(static_cast<long>(queued) + queued_delta);
      running = static_cast<std::size_t>(static_cast<long>(running) + running_delta);
      idle = queued == 0 && running == 0;
    }
    if (idle) flush_cv.notify_all();  // only flush() waits, and only for idle
  }

  enum class Outcome { done, retrying };

  // One attempt. On failure, retries (on the scheduler, or by the transport) or dead-letters.
  Outcome attempt(const SubPtr& sub, const Envelope& envelope, int number) {
    const MessagePtr& message = envelope.message;
    const CallGate::Scope scope(sub->gate);
    if (!scope) {  // unsubscribed meanwhile: the message is dropped, counted and logged
      if (give_back(envelope)) return Outcome::done;
      count_dropped(*sub, 1);
      keel::internal::logger().warn("pubsub: subscription '{}' ended before '{}' #{} reached it",
                                    sub->name, message->topic, message->sequence);
      return Outcome::done;
    }
    try {
      sub->handler(*message);
    } catch (...) {
      ++sub->failed;
      ++failed;
      return failure(sub, envelope, number, std::current_exception());
    }
    ++sub->delivered;
    ++delivered;
    if (envelope.acknowledgement) envelope.acknowledgement->ack();
    return Outcome::done;
  }

  Outcome failure(const SubPtr& sub, const Envelope& envelope, int number,
                  const std::exception_ptr& error) {
    const Message& message = *envelope.message;
    const std::string what = keel::internal::describe(error);
    if (number >= sub->retry.max_attempts) {
      dead_letter(*sub, message, what, number);
      if (envelope.acknowledgement) envelope.acknowledgement->term();
      return Outcome::done;
    }
    ++retried;
    const Duration delay = retry_delay(sub->retry, number);
    keel::internal::logger().warn(
        "pubsub: subscription '{}' failed on '{}' (attempt {}): {}; retrying", sub->name,
        message.topic, number, what);
    if (envelope.acknowledgement) {
      // The transport redelivers it after `delay`; later messages go on meanwhile.
      envelope.acknowledgement->nak(delay);
      return Outcome::done;
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    const TaskHandle handle = scheduler().schedule_after(delay, [weak, sub, envelope, number] {
      if (auto self = weak.lock()) self->retry(sub, envelope, number + 1);
    });
    if (!handle.cancelled()) return Outcome::retrying;
    // The scheduler refused the retry (shutting down): give up on the message now.
    dead_letter(*sub, message, what + " (the retry could not be scheduled)", number);
    return Outcome::done;
  }

  void retry(const SubPtr& sub, const Envelope& envelope, int number) {
    adjust_queued(0, 1);  // a handler running on the scheduler's thread: flush() waits for it
    const Outcome outcome = attempt(sub, envelope, number);
    adjust_queued(0, -1);
    if (sub->delivery == Delivery::asynchronous && outcome == Outcome::done) continue_queue(sub);
  }

  void dead_letter(Sub& sub, const Message& message, const std::string& error, int attempts) {
    ++dead_lettered;
    keel::internal::logger().warn(
        "pubsub: dead letter: subscription '{}' gave up on '{}' #{} after {} attempt(s): {}",
        sub.name, message.topic, message.sequence, attempts, error);
    const DeadLetter letter{message, sub.name, error, attempts};
    if (options.dead_letter_handler) {
      try {
        options.dead_letter_handler(letter);
      } catch (...) {
        keel::internal::logger().warn("pubsub: the dead-letter handler threw: {}",
                                      keel::internal::describe(std::current_exception()));
      }
    }
    const auto& prefix = options.dead_letter_topic;
    if (prefix && !message.topic.starts_with(*prefix)) {
      Headers headers = message.headers;
      headers.emplace_back("x-dead-letter-topic", message.topic);
      headers.emplace_back("x-dead-letter-subscription", sub.name);
      headers.emplace_back("x-dead-letter-error", error);
      headers.emplace_back("x-dead-letter-attempts", std::to_string(attempts));
      try {
        publish(*prefix + "." + as_token(sub.name), message.payload, std::move(headers));
      } catch (const std::exception& e) {
        keel::internal::logger().warn("pubsub: publishing the dead letter failed: {}", e.what());
      }
    }
  }

  // Asynchronous: queue the message; false when the overflow policy is fail and it was full.
  // A transport that redelivers gets back what is not queued (full, or unsubscribed meanwhile).
  bool enqueue(const SubPtr& sub, const Envelope& envelope) {
    bool wake = false;
    {
      std::unique_lock lock(sub->queue_mutex);
      if (sub->ending || sub->gate.closed()) {
        give_back(envelope);
        return true;
      }
      while (sub->queue.size() >= sub->capacity) {
        if (sub->overflow == OverflowPolicy::fail) {
          if (!give_back(envelope)) count_dropped(*sub, 1);
          return false;
        }
        if (sub->overflow == OverflowPolicy::drop_oldest) {
          const Envelope oldest = std::move(sub->queue.front());
          sub->queue.pop_front();
          adjust_queued(-1, 0);
          if (give_back(oldest)) continue;
          const std::uint64_t total = count_dropped(*sub, 1);
          if (worth_logging(total)) {
            keel::internal::logger().warn(
                "pubsub: subscription '{}' full: dropped its oldest message ({} dropped so far; "
                "logged at 1, 2, 4, 8, ...)",
                sub->name, total);
          }
          continue;
        }
        sub->not_full.wait(lock, [&] {
          return sub->queue.size() < sub->capacity || sub->ending || sub->gate.closed();
        });
        if (sub->ending || sub->gate.closed()) {
          give_back(envelope);
          return true;
        }
      }
      sub->queue.push_back(envelope);
      adjust_queued(1, 0);
      if (!sub->scheduled) {
        sub->scheduled = true;
        wake = true;
      }
    }
    if (wake) make_ready(sub);
    return true;
  }

  void make_ready(const SubPtr& sub) {
    {
      std::lock_guard lock(ready_mutex);
      ready.push_back(sub);
    }
    ready_cv.notify_one();
  }

  // After a message of `sub` is finished: the next one, or idle.
  void continue_queue(const SubPtr& sub) {
    bool more = false;
    {
      std::lock_guard lock(sub->queue_mutex);
      more = !sub->queue.empty() && !sub->gate.closed();
      if (!more) sub->scheduled = false;
    }
    if (more) make_ready(sub);
  }

  // A worker takes a ready subscription and delivers up to kBatch of its messages in order
  // before handing it back, so that a busy subscription costs one hand-off per batch.
  static constexpr int kBatch = 64;

  void work() {
    for (;;) {
      SubPtr sub;
      {
        std::unique_lock lock(ready_mutex);
        ready_cv.wait(lock, [&] { return stopping || !ready.empty(); });
        if (stopping) return;
        sub = std::move(ready.front());
        ready.pop_front();
      }
      Outcome outcome = Outcome::done;
      for (int n = 0; n < kBatch && outcome == Outcome::done; ++n) {
        Envelope envelope;
        {
          std::lock_guard lock(sub->queue_mutex);
          if (!sub->queue.empty()) {
            envelope = std::move(sub->queue.front());
            sub->queue.pop_front();
          }
        }
        if (!envelope.message) break;
        sub->not_full.notify_one();
        adjust_queued(-1, 1);
        outcome = attempt(sub, envelope, envelope.attempt);
        adjust_queued(0, -1);
      }
      if (outcome == Outcome::done) continue_queue(sub);  // else the retry continues it
    }
  }

  std::size_t publish(std::string_view topic, std::string payload, Headers headers) {
    validate_topic(topic);
    auto message = std::make_shared<const Message>(Message{
        std::string(topic), std::move(payload), ++sequence, clock.now(), std::move(headers)});
    std::vector<SubPtr> targets;
    {
      std::vector<Id> ids;
      std::shared_lock lock(index_mutex);
      trie.match(topic, ids);
      targets.reserve(ids.size());
      for (Id id : ids) {
        if (auto it = subs.find(id); it != subs.end()) targets.push_back(it->second);
      }
    }
    if (options.transport) {  // the matching subscriptions receive it through the transport
      options.transport->publish(*message);
      ++published;
      return targets.size();
    }
    ++published;
    std::vector<std::string> full;
    const Envelope envelope{.message = message};
    for (const SubPtr& sub : targets) {
      if (sub->delivery == Delivery::synchronous) {
        attempt(sub, envelope, 1);
      } else if (!enqueue(sub, envelope)) {
        full.push_back(sub->name);
      }
    }
    if (!full.empty()) throw PublishFailed(std::string(topic), std::move(full));
    return targets.size();
  }

  // A message from the transport for `sub`: delivered like a published one.
  void receive(const SubPtr& sub, const Envelope& envelope) {
    if (sub->delivery == Delivery::synchronous) {
      attempt(sub, envelope, envelope.attempt);
    } else if (!enqueue(sub, envelope) && !envelope.acknowledgement) {
      if (worth_logging(sub->dropped.load())) {
        keel::internal::logger().warn(
            "pubsub: subscription '{}' full: dropped '{}' #{} from the transport ({} dropped so "
            "far; logged at 1, 2, 4, 8, ...)",
            sub->name, envelope.message->topic, envelope.message->sequence, sub->dropped.load());
      }
    }
  }

  // Ends `sub`. Whoever takes it out of `subs` (its Subscription, or stop()) also ends its
  // transport subscription.
  void end(const SubPtr& sub) {
    bool owner = false;
    {
      std::unique_lock lock(index_mutex);
      trie.erase(sub->pattern, sub->id);
      owner = subs.erase(sub->id) > 0;
    }
    if (owner) stop_remote(*sub);
    close(*sub);
  }

  // Ends the transport subscription before close(), so that what the transport still delivers
  // is not handed back to it only to come straight back. A transport thread waiting for room in
  // the full queue is let go first (the waiting message goes back): the handler that would make
  // room may be the one unsubscribing.
  void stop_remote(Sub& sub) {
    if (!sub.remote) return;
    {
      std::lock_guard lock(sub.queue_mutex);
      sub.ending = true;
    }
    sub.not_full.notify_all();
    sub.remote.unsubscribe();
  }
};

EventBus::EventBus(BusOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

EventBus::~EventBus() { impl_->stop(); }

Subscription EventBus::subscribe(std::string_view pattern, Handler handler,
                                 SubscribeOptions options) {
  validate_pattern(pattern);
  if (!handler) throw std::invalid_argument("EventBus::subscribe: empty handler");
  if (options.queue_capacity == 0) {
    throw std::invalid_argument("SubscribeOptions.queue_capacity must be > 0, got 0");
  }
  options.retry.validate();
  if (options.retry.max_attempts < 1) {
    throw std::invalid_argument(fmt::format(
        "SubscribeOptions.retry.max_attempts must be >= 1, got {}", options.retry.max_attempts));
  }
  auto sub = std::make_shared<Sub>();
  sub->name = options.name.empty() ? std::string(pattern) : options.name;
  sub->pattern = std::string(pattern);
  sub->handler = std::move(handler);
  sub->delivery = options.delivery.value_or(impl_->options.delivery);
  sub->capacity = options.queue_capacity;
  sub->overflow = options.overflow;
  sub->retry = options.retry;
  if (sub->delivery == Delivery::asynchronous) impl_->start_workers();
  if (impl_->options.transport) {
    SubscribeOptions resolved = std::move(options);
    resolved.name = sub->name;
    std::weak_ptr<Impl> weak_impl = impl_;
    std::weak_ptr<Sub> weak_sub = sub;
    sub->remote = impl_->options.transport->subscribe(
        pattern, resolved, [weak_impl, weak_sub](Incoming incoming) {
          Envelope envelope{std::make_shared<const Message>(std::move(incoming.message)),
                            std::move(incoming.acknowledgement), incoming.attempt};
          auto impl = weak_impl.lock();
          auto target = weak_sub.lock();
          if (impl && target) {
            impl->receive(target, envelope);
          } else {
            Impl::give_back(envelope);
          }
        });
  }
  {
    std::unique_lock lock(impl_->index_mutex);
    sub->id = impl_->next_id++;
    impl_->trie.insert(pattern, sub->id);
    impl_->subs.emplace(sub->id, sub);
  }
  std::weak_ptr<Impl> weak = impl_;
  return Subscription([weak, sub] {
    if (auto impl = weak.lock()) impl->end(sub);
  });
}

std::size_t EventBus::publish(std::string_view topic, std::string payload) {
  return impl_->publish(topic, std::move(payload), {});
}

std::size_t EventBus::publish(std::string_view topic, std::string payload, Headers headers) {
  return impl_->publish(topic, std::move(payload), std::move(headers));
}

std::size_t EventBus::publish_json(std::string_view topic, const boost::json::value& value) {
  return impl_->publish(topic, boost::json::serialize(value),
                        {{"content-type", "application/json"}});
}

void EventBus::flush() {
  std::unique_lock lock(impl_->flush_mutex);
  impl_->flush_cv.wait(lock, [&] { return impl_->queued == 0 && impl_->running == 0; });
}

BusMetrics EventBus::metrics() const {
  const Impl& i = *impl_;
  BusMetrics m{i.published.load(),
               i.delivered.load(),
               i.failed.load(),
               i.retried.load(),
               i.dead_lettered.load(),
               i.dropped.load(),
               0};
  std::shared_lock lock(i.index_mutex);
  m.subscriptions = i.subs.size();
  return m;
}

std::vector<SubscriptionInfo> EventBus::subscriptions() const {
  std::vector<SubPtr> subs;
  {
    std::shared_lock lock(impl_->index_mutex);
    for (const auto& [id, sub] : impl_->subs) subs.push_back(sub);
  }
  std::sort(subs.begin(), subs.end(),
            [](const SubPtr& a, const SubPtr& b) { return a->id < b->id; });
  std::vector<SubscriptionInfo> infos;
  for (const SubPtr& sub : subs) {
    std::size_t depth = 0;
    {
      std::lock_guard lock(sub->queue_mutex);
      depth = sub->queue.size();
    }
    infos.push_back({sub->name, sub->pattern, sub->delivery, depth, sub->delivered.load(),
                     sub->failed.load(), sub->dropped.load()});
  }
  return infos;
}

Subscription EventBus::register_metrics(MetricsRegistry& registry, std::string_view name) const {
  const std::string bus(name);
  std::vector<Subscription> parts;
  const auto event = [&](const char* what, std::atomic<std::uint64_t> Impl::*field) {
    parts.push_back(registry.counter_fn(
        "keel_pubsub_messages_total", "Messages by what happened to them",
        {{"bus", bus}, {"event", what}},
        [impl = impl_, field] { return static_cast<double>(((*impl).*field).load()); }));
  };
  event("published", &Impl::published);
  event("delivered", &Impl::delivered);
  event("failed", &Impl::failed);
  event("retried", &Impl::retried);
  event("dead_lettered", &Impl::dead_lettered);
  event("dropped", &Impl::dropped);
  parts.push_back(
      registry.gauge_fn("keel_pubsub_subscriptions", "Active subscriptions", {{"bus", bus}},
                        [this] { return static_cast<double>(metrics().subscriptions); }));
  std::vector<SubPtr> subs;
  {
    std::shared_lock lock(impl_->index_mutex);
    for (const auto& [id, sub] : impl_->subs) subs.push_back(sub);
  }
  for (const SubPtr& sub : subs) {
    if (sub->delivery != Delivery::asynchronous) continue;
    parts.push_back(registry.gauge_fn("keel_pubsub_queue_depth",
                                      "Messages waiting in an asynchronous subscription's queue",
                                      {{"bus", bus}, {"subscription", sub->name}}, [sub] {
                                        std::lock_guard lock(sub->queue_mutex);
                                        return static_cast<double>(sub->queue.size());
                                      }));
  }
  return Subscription::all(std::move(parts));
}

Subscription subscribe_audit(EventBus& bus, std::function<void(const std::string& line)> sink) {
  if (!sink) throw std::invalid_argument("subscribe_audit: empty sink");
  return bus.subscribe("#",
                       [sink = std::move(sink)](const Message& message) {
                         boost::json::object headers;
                         for (const auto& [key, value] : message.headers) headers[key] = value;
                         const boost::json::object line{
                             {"sequence", message.sequence},
                             {"topic", message.topic},
                             {"payload", message.payload},
                             {"headers", std::move(headers)},
                             {"published_at_ns", message.published_at.time_since_epoch().count()}};
                         sink(boost::json::serialize(line));
                       },
                       {.name = "audit"});
}

Subscription subscribe_audit_file(EventBus& bus, const std::string& path) {
  auto file = std::make_shared<std::ofstream>(path, std::ios::app);
  if (!*file) throw std::runtime_error(fmt::format("cannot open audit file '{}'", path));
  auto mutex = std::make_shared<std::mutex>();  // synchronous handlers may run concurrently
  return subscribe_audit(bus, [file, mutex](const std::string& line) {
    std::lock_guard lock(*mutex);
    *file << line << '\n';
    file->flush();
  });
}

}  // namespace keel::pubsub
