#include "keel/nats/nats_transport.h"

#include <fmt/format.h>
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "keel/core/call_gate.h"
#include "keel/core/errors.h"
#include "keel/core/internal/log.h"
#include "keel/nats/internal/subjects.h"

namespace keel::nats {
namespace {

using pubsub::Headers;
using pubsub::Incoming;
using pubsub::Message;

// keel's own headers, added on publish and removed on arrival.
constexpr const char* kSequenceHeader = "Keel-Sequence";
constexpr const char* kPublishedAtHeader = "Keel-Published-At";

struct NatsDeleter {
  void operator()(natsOptions* p) const { natsOptions_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

// nats.c's description of the last error on this thread (more precise than the status text).
std::string error_text(natsStatus status, jsErrCode js_error = static_cast<jsErrCode>(0)) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  std::string message = text != nullptr && *text != '\0' ? text : natsStatus_GetText(status);
  if (js_error != 0) message += fmt::format(" (JetStream error {})", static_cast<int>(js_error));
  return message;
}

void check(natsStatus status, std::string_view what,
           jsErrCode js_error = static_cast<jsErrCode>(0)) {
  if (status != NATS_OK)
    throw BackendError("nats", fmt::format("{}: {}", what, error_text(status, js_error)));
}

std::int64_t milliseconds(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// NATS header keys are tokens: no ':' and no whitespace or control characters.
void validate_header_key(const std::string& key) {
  const bool ok = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != ':';
  });
  if (!ok) {
    throw std::invalid_argument(
        fmt::format("NatsTransport: header key '{}' cannot travel as a NATS header", key));
  }
}

std::string header_value(std::string value) {
  std::replace_if(
      value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return value;
}

template <typename T>
T parse_number(const char* text, T fallback) {
  T value{};
  const std::string_view s(text);
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  return error == std::errc() && end == s.data() + s.size() ? value : fallback;
}

void validate(const NatsTransportOptions& o) {
  const auto fail = [](std::string_view what) {
    throw std::invalid_argument(fmt::format("NatsTransportOptions: {}", what));
  };
  const ConnectionOptions& c = o.connection;
  if (c.url.empty()) fail("connection.url must not be empty");
  if (c.connect_timeout <= Duration::zero()) fail("connection.connect_timeout must be > 0");
  if (c.request_timeout <= Duration::zero()) fail("connection.request_timeout must be > 0");
  if (c.max_reconnect_attempts < -1) fail("connection.max_reconnect_attempts must be >= -1");
  if (c.reconnect_wait < Duration::zero()) fail("connection.reconnect_wait must be >= 0");
  if (c.reconnect_buffer_bytes == 0 ||
      c.reconnect_buffer_bytes > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    fail("connection.reconnect_buffer_bytes must be > 0 and fit an int");
  }
  const JetStreamOptions& js = o.jetstream;
  const bool prefix_ok = std::all_of(js.stream_prefix.begin(), js.stream_prefix.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
  });
  if (!prefix_ok)
    fail(fmt::format("jetstream.stream_prefix '{}' must be letters, digits, '-' or '_'",
                     js.stream_prefix));
  if (js.max_age < Duration::zero()) fail("jetstream.max_age must be >= 0");
  if (js.ack_wait <= Duration::zero()) fail("jetstream.ack_wait must be > 0");
}

}  // namespace

struct NatsTransport::Impl : std::enable_shared_from_this<NatsTransport::Impl> {
  struct Sub;
  class Ack;

  explicit Impl(NatsTransportOptions o)
      : options(std::move(o)), clock(options.clock != nullptr ? *options.clock : default_clock()) {}

  ~Impl() {
    jsCtx_Destroy(js);                   // accepts nullptr
    natsConnection_Destroy(connection);  // accepts nullptr
  }

  NatsTransportOptions options;
  const Clock& clock;
  natsConnection* connection = nullptr;  // owned; closed by close(), destroyed with the Impl
  jsCtx* js = nullptr;                   // owned; jetstream mode only

  std::mutex streams_mutex;
  std::set<std::string> streams;  // known to exist; guarded by streams_mutex

  std::mutex subs_mutex;
  std::unordered_set<std::shared_ptr<Sub>> subs;  // active; guarded by subs_mutex

  // nats.c's connection callbacks stop after the closed callback.
  std::mutex closed_mutex;
  std::condition_variable closed_cv;
  bool closed = false;  // guarded by closed_mutex

  std::atomic<std::uint64_t> published{0}, received{0}, filtered{0}, rejected{0}, acks{0}, naks{0},
      terms{0}, ack_failures{0}, async_errors{0}, disconnects{0}, reconnects{0};

  void connect();
  void close();
  std::string ensure_stream(std::string_view token);
  void ensure_consumer(const std::string& stream, const std::string& durable,
                       const std::string& filter);
  void publish(const Message& message);
  Subscription subscribe(std::string_view pattern, const pubsub::SubscribeOptions& options,
                         pubsub::Receiver receive);
  void end(const std::shared_ptr<Sub>& sub);
  Message decode(natsMsg* msg) const;
  bool jetstream_mode() const { return options.mode == Mode::jetstream; }

  // JetStream acknowledgements, counted. A failed one is logged: the server redelivers the
  // message once ack_wait has passed.
  void ack(natsMsg* msg) noexcept { settled("ack", msg, natsMsg_Ack(msg, nullptr), acks); }
  void nak(natsMsg* msg, Duration delay) noexcept {
    settled("nak", msg, natsMsg_NakWithDelay(msg, milliseconds(delay), nullptr), naks);
  }
  void term(natsMsg* msg) noexcept { settled("term", msg, natsMsg_Term(msg, nullptr), terms); }
  void settled(const char* what, natsMsg* msg, natsStatus status,
               std::atomic<std::uint64_t>& counter) noexcept {
    if (status == NATS_OK) {
      ++counter;
      return;
    }
    ++ack_failures;
    keel::internal::logger().warn("nats: {} of '{}' failed (redelivered after ack_wait): {}", what,
                                  natsMsg_GetSubject(msg), error_text(status));
  }
};

// One keel subscription: one or two NATS subscriptions feeding one Receiver.
struct NatsTransport::Impl::Sub : std::enable_shared_from_this<Sub> {
  std::shared_ptr<Impl> impl;
  std::string pattern;
  bool filter_locally = false;
  pubsub::Receiver receive;
  CallGate gate;
  std::vector<natsSubscription*> nats_subs;  // owned; unsubscribed by end()

  ~Sub() {
    for (natsSubscription* nats_sub : nats_subs) natsSubscription_Destroy(nats_sub);
  }
  void handle(natsMsg* raw);
};

// Settles one JetStream message. Keeps the message and its subscription (through which nats.c
// acknowledges) alive until then.
class NatsTransport::Impl::Ack final : public pubsub::Acknowledgement {
 public:
  Ack(std::shared_ptr<Sub> sub, NatsPtr<natsMsg> msg)
      : sub_(std::move(sub)), msg_(std::move(msg)) {}

  void ack() noexcept override { sub_->impl->ack(msg_.get()); }
  void nak(Duration delay) noexcept override { sub_->impl->nak(msg_.get(), delay); }
  void term() noexcept override { sub_->impl->term(msg_.get()); }

 private:
  std::shared_ptr<Sub> sub_;
  NatsPtr<natsMsg> msg_;
};

void NatsTransport::Impl::connect() {
  natsOptions* raw = nullptr;
  check(natsOptions_Create(&raw), "options");
  const NatsPtr<natsOptions> opts(raw);
  const ConnectionOptions& c = options.connection;
  check(natsOptions_SetURL(opts.get(), c.url.c_str()), "url");
  check(natsOptions_SetName(opts.get(), c.name.c_str()), "name");
  check(natsOptions_SetTimeout(opts.get(), milliseconds(c.connect_timeout)), "connect_timeout");
  check(natsOptions_SetAllowReconnect(opts.get(), c.reconnect), "reconnect");
  check(natsOptions_SetMaxReconnect(opts.get(), c.max_reconnect_attempts),
        "max_reconnect_attempts");
  check(natsOptions_SetReconnectWait(opts.get(), milliseconds(c.reconnect_wait)), "reconnect_wait");
  check(natsOptions_SetReconnectBufSize(opts.get(), static_cast<int>(c.reconnect_buffer_bytes)),
        "reconnect_buffer_bytes");
  // The callbacks run on nats.c's connection-events thread; `this` outlives them (close()).
  check(natsOptions_SetDisconnectedCB(
            opts.get(),
            [](natsConnection*, void* self) { ++static_cast<Impl*>(self)->disconnects; }, this),
        "disconnected callback");
  check(natsOptions_SetReconnectedCB(
            opts.get(),
            [](natsConnection*, void* self) {
              ++static_cast<Impl*>(self)->reconnects;
              keel::internal::logger().info("nats: reconnected");
            },
            this),
        "reconnected callback");
  check(natsOptions_SetClosedCB(
            opts.get(),
            [](natsConnection*, void* closure) {
              auto* self = static_cast<Impl*>(closure);
              // Notified under the lock: close() may destroy the Impl as soon as it sees `closed`.
              std::lock_guard lock(self->closed_mutex);
              self->closed = true;
              self->closed_cv.notify_all();
            },
            this),
        "closed callback");
  check(natsOptions_SetErrorHandler(
            opts.get(),
            [](natsConnection*, natsSubscription*, natsStatus error, void* self) {
              ++static_cast<Impl*>(self)->async_errors;
              keel::internal::logger().warn("nats: asynchronous error: {}",
                                            natsStatus_GetText(error));
            },
            this),
        "error handler");
  check(natsConnection_Connect(&connection, opts.get()), fmt::format("connect to {}", c.url));
  if (options.mode == Mode::jetstream) {
    jsOptions js_options;
    check(jsOptions_Init(&js_options), "JetStream options");
    js_options.Wait = milliseconds(c.request_timeout);
    check(natsConnection_JetStream(&js, connection, &js_options), "JetStream context");
  }
}

void NatsTransport::Impl::close() {
  std::unordered_set<std::shared_ptr<Sub>> remaining;
  {
    std::lock_guard lock(subs_mutex);
    remaining.swap(subs);
  }
  for (const auto& sub : remaining) end(sub);
  if (connection == nullptr) return;
  (void)natsConnection_FlushTimeout(connection, milliseconds(options.connection.request_timeout));
  natsConnection_Close(connection);
  std::unique_lock lock(closed_mutex);
  closed_cv.wait_for(lock, std::chrono::seconds(10), [&] { return closed; });
}

std::string NatsTransport::Impl::ensure_stream(std::string_view token) {
  std::string name = options.jetstream.stream_prefix + internal::escape_name(token);
  {
    std::lock_guard lock(streams_mutex);
    if (streams.contains(name)) return name;
  }
  jsErrCode js_error = static_cast<jsErrCode>(0);
  jsStreamInfo* info = nullptr;
  natsStatus status = js_GetStreamInfo(&info, js, name.c_str(), nullptr, &js_error);
  NatsPtr<jsStreamInfo> existing(info);
  if (status == NATS_NOT_FOUND) {
    if (!options.jetstream.create_streams) {
      throw BackendError("nats", fmt::format("no JetStream stream '{}' for topics '{}.…' (and "
                                             "JetStreamOptions::create_streams is off)",
                                             name, token));
    }
    const std::string exact(token);
    const std::string below = fmt::format("{}.>", token);
    const char* subjects[] = {exact.c_str(), below.c_str()};
    jsStreamConfig config;
    check(jsStreamConfig_Init(&config), "stream config");
    config.Name = name.c_str();
    config.Subjects = subjects;
    config.SubjectsLen = 2;
    config.Storage = options.jetstream.storage == Storage::file ? js_FileStorage : js_MemoryStorage;
    config.MaxAge = options.jetstream.max_age.count();
    info = nullptr;
    status = js_AddStream(&info, js, &config, nullptr, &js_error);
    existing.reset(info);
    if (status != NATS_OK) {  // another process may have created it meanwhile
      const std::string add_error = error_text(status, js_error);
      info = nullptr;
      const natsStatus again = js_GetStreamInfo(&info, js, name.c_str(), nullptr, nullptr);
      existing.reset(info);
      if (again != NATS_OK) {
        // JetStream error 10065: another stream holds these subjects (another prefix made it).
        const bool overlap = js_error == static_cast<jsErrCode>(10065);
        throw BackendError(
            "nats", fmt::format("create stream '{}': {}{}", name, add_error,
                                overlap ? fmt::format("; another stream holds '{}'", exact) : ""));
      }
    }
    keel::internal::logger().info("nats: stream '{}' ready for '{}' and '{}'", name, exact, below);
  } else {
    check(status, fmt::format("look up stream '{}'", name), js_error);
  }
  std::lock_guard lock(streams_mutex);
  streams.insert(name);
  return name;
}

// A durable push consumer: the server remembers its position while no subscriber is bound.
// It redelivers without limit: the bus gives up after retry.max_attempts by the delivery count,
// so that a delivery lost to a crash is retried too (at least once).
void NatsTransport::Impl::ensure_consumer(const std::string& stream, const std::string& durable,
                                          const std::string& filter) {
  jsErrCode js_error = static_cast<jsErrCode>(0);
  jsConsumerInfo* info = nullptr;
  natsStatus status =
      js_GetConsumerInfo(&info, js, stream.c_str(), durable.c_str(), nullptr, &js_error);
  const NatsPtr<jsConsumerInfo> existing(info);
  if (status != NATS_NOT_FOUND) {
    check(status, fmt::format("look up durable '{}' on stream '{}'", durable, stream), js_error);
    const char* raw_filter =
        existing->Config != nullptr ? existing->Config->FilterSubject : nullptr;
    const std::string existing_filter = raw_filter != nullptr ? raw_filter : "";
    if (filter != existing_filter) {
      throw BackendError("nats", fmt::format("durable '{}' on stream '{}' filters '{}', not '{}': "
                                             "it was made for another pattern",
                                             durable, stream, existing_filter, filter));
    }
    return;
  }
  jsConsumerConfig config;
  check(jsConsumerConfig_Init(&config), "consumer config");
  natsInbox* inbox = nullptr;
  check(natsInbox_Create(&inbox), "inbox");
  config.Durable = durable.c_str();
  config.DeliverSubject = inbox;
  config.AckPolicy = js_AckExplicit;
  config.AckWait = options.jetstream.ack_wait.count();
  config.MaxDeliver = -1;
  config.DeliverPolicy = options.jetstream.deliver_history ? js_DeliverAll : js_DeliverNew;
  config.FilterSubject = filter.empty() ? nullptr : filter.c_str();
  info = nullptr;
  status = js_AddConsumer(&info, js, stream.c_str(), &config, nullptr, &js_error);
  jsConsumerInfo_Destroy(info);
  natsInbox_Destroy(inbox);
  check(status, fmt::format("create durable '{}' on stream '{}'", durable, stream), js_error);
}

void NatsTransport::Impl::publish(const Message& message) {
  if (message.payload.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::invalid_argument("NatsTransport: payload over 2 GiB");
  }
  natsMsg* raw = nullptr;
  check(natsMsg_Create(&raw, message.topic.c_str(), nullptr, message.payload.data(),
                       static_cast<int>(message.payload.size())),
        "create message");
  const NatsPtr<natsMsg> msg(raw);
  for (const auto& [key, value] : message.headers) {
    validate_header_key(key);
    check(natsMsgHeader_Add(msg.get(), key.c_str(), header_value(value).c_str()), "header");
  }
  // The publish instant on the wall clock: the only time two machines share.
  const WallTime published_wall = clock.wall_now() - (clock.now() - message.published_at);
  check(natsMsgHeader_Set(msg.get(), kSequenceHeader, std::to_string(message.sequence).c_str()),
        "header");
  check(natsMsgHeader_Set(msg.get(), kPublishedAtHeader,
                          std::to_string(published_wall.time_since_epoch().count()).c_str()),
        "header");
  if (options.mode == Mode::core) {
    check(natsConnection_PublishMsg(connection, msg.get()),
          fmt::format("publish to '{}'", message.topic));
  } else {
    ensure_stream(internal::first_token(message.topic));
    jsPubAck* ack = nullptr;
    jsErrCode js_error = static_cast<jsErrCode>(0);
    const natsStatus status = js_PublishMsg(&ack, js, msg.get(), nullptr, &js_error);
    const NatsPtr<jsPubAck> owned(ack);
    check(status, fmt::format("publish to '{}'", message.topic), js_error);
  }
  ++published;
}

Message NatsTransport::Impl::decode(natsMsg* msg) const {
  Message message;
  message.topic = natsMsg_GetSubject(msg);
  const char* data = natsMsg_GetData(msg);
  message.payload.assign(data != nullptr ? data : "",
                         static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  message.published_at = clock.now();

  const char** keys = nullptr;
  int key_count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &key_count) != NATS_OK) return message;
  for (int i = 0; i < key_count; ++i) {
    const char** values = nullptr;
    int value_count = 0;
    if (natsMsgHeader_Values(msg, keys[i], &values, &value_count) != NATS_OK) continue;
    const std::string_view key = keys[i];
    if (key == kSequenceHeader && value_count > 0) {
      message.sequence = parse_number<std::uint64_t>(values[0], 0);
    } else if (key == kPublishedAtHeader && value_count > 0) {
      // Back onto this process's monotonic clock: now() minus the time since the publish.
      const WallTime at{Duration(parse_number<Duration::rep>(values[0], 0))};
      const Duration age = std::max(Duration::zero(), clock.wall_now() - at);
      message.published_at = clock.now() - age;
    } else {
      for (int v = 0; v < value_count; ++v) message.headers.emplace_back(key, values[v]);
    }
    std::free(static_cast<void*>(values));
  }
  std::free(static_cast<void*>(keys));
  // NATS keeps headers in a map: give receivers a stable order (values of one key keep theirs).
  std::stable_sort(message.headers.begin(), message.headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return message;
}

void NatsTransport::Impl::Sub::handle(natsMsg* raw) {
  NatsPtr<natsMsg> msg(raw);
  const CallGate::Scope scope(gate);
  if (!scope) {  // ended meanwhile: JetStream gives it to the subscription's next holder
    if (impl->jetstream_mode()) impl->nak(msg.get(), Duration::zero());
    return;
  }
  const std::string_view subject = natsMsg_GetSubject(msg.get());
  try {
    pubsub::validate_topic(subject);
  } catch (const pubsub::InvalidTopic& e) {
    ++impl->rejected;
    keel::internal::logger().warn("nats: dropped a message on subject that is no keel topic: {}",
                                  e.what());
    if (impl->jetstream_mode()) impl->term(msg.get());
    return;
  }
  if (filter_locally && !pubsub::topic_matches(pattern, subject)) {
    ++impl->filtered;
    if (impl->jetstream_mode()) impl->ack(msg.get());  // not for this subscription
    return;
  }
  Incoming incoming{impl->decode(msg.get())};
  if (impl->jetstream_mode()) {
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg.get()) == NATS_OK) {
      const NatsPtr<jsMsgMetaData> owned(meta);
      incoming.attempt =
          static_cast<int>(std::clamp<std::uint64_t>(meta->NumDelivered, 1, 1 << 30));
    }
    incoming.acknowledgement = std::make_shared<Ack>(shared_from_this(), std::move(msg));
  }
  ++impl->received;
  try {
    receive(std::move(incoming));
  } catch (...) {  // the bus isolates handlers; this is a failure of the bus itself
    keel::internal::logger().error("nats: delivering to '{}' failed: {}", pattern,
                                   keel::internal::describe(std::current_exception()));
  }
}

Subscription NatsTransport::Impl::subscribe(std::string_view pattern,
                                            const pubsub::SubscribeOptions& sub_options,
                                            pubsub::Receiver receive) {
  pubsub::validate_pattern(pattern);
  if (!receive) throw std::invalid_argument("NatsTransport::subscribe: empty receiver");
  internal::SubjectPlan plan = internal::subjects_for(pattern);
  auto sub = std::make_shared<Sub>();
  sub->impl = shared_from_this();
  sub->pattern = std::string(pattern);
  sub->filter_locally = plan.filter_locally;
  sub->receive = std::move(receive);

  // nats.c calls these on the subscription's thread; the last reference to `sub` that they use
  // is released by the completion callback, after which nats.c never calls them again.
  const natsMsgHandler on_message = [](natsConnection*, natsSubscription*, natsMsg* msg,
                                       void* closure) {
    (*static_cast<std::shared_ptr<Sub>*>(closure))->handle(msg);
  };
  const natsOnCompleteCB on_complete = [](void* closure) {
    delete static_cast<std::shared_ptr<Sub>*>(closure);
  };
  const auto attach = [&](natsStatus status, natsSubscription* nats_sub,
                          std::shared_ptr<Sub>* closure, const std::string& what,
                          jsErrCode js_error) {
    if (status != NATS_OK) {
      delete closure;
      end(sub);
      check(status, what, js_error);
    }
    sub->nats_subs.push_back(nats_sub);
    if (natsSubscription_SetOnCompleteCB(nats_sub, on_complete, closure) != NATS_OK) {
      delete closure;  // cannot happen for an open asynchronous subscription
    }
  };

  if (!jetstream_mode()) {
    for (const std::string& subject : plan.subjects) {
      natsSubscription* nats_sub = nullptr;
      auto* closure = new std::shared_ptr<Sub>(sub);
      const natsStatus status =
          natsConnection_Subscribe(&nats_sub, connection, subject.c_str(), on_message, closure);
      attach(status, nats_sub, closure, fmt::format("subscribe to '{}'", subject),
             static_cast<jsErrCode>(0));
    }
  } else {
    const std::string_view token = internal::first_token(pattern);
    if (token == "*" || token == "#" || token == ">") {
      throw std::invalid_argument(fmt::format(
          "NatsTransport (jetstream): pattern '{}' starts with a wildcard; its first token names "
          "the stream",
          pattern));
    }
    const std::string stream = ensure_stream(token);
    const std::string durable = internal::escape_name(sub_options.name);
    // One subject: the consumer filters on it. Two ("orders.#"): the consumer takes the whole
    // stream and the local filter does the rest.
    const bool one_subject = plan.subjects.size() == 1;
    if (!one_subject) sub->filter_locally = true;
    const std::string filter = one_subject ? plan.subjects.front() : std::string();
    ensure_consumer(stream, durable, filter);
    // Bound to the consumer made above, so nats.c never deletes it (it deletes consumers that
    // its own subscribe call created when they are unsubscribed).
    jsSubOptions so;
    check(jsSubOptions_Init(&so), "subscribe options");
    so.Stream = stream.c_str();
    so.Consumer = durable.c_str();
    so.ManualAck = true;
    const std::string subject = one_subject ? filter : fmt::format("{}.>", token);
    natsSubscription* nats_sub = nullptr;
    auto* closure = new std::shared_ptr<Sub>(sub);
    jsErrCode js_error = static_cast<jsErrCode>(0);
    const natsStatus status =
        js_Subscribe(&nats_sub, js, subject.c_str(), on_message, closure, nullptr, &so, &js_error);
    attach(status, nats_sub, closure,
           fmt::format("durable subscription '{}' on stream '{}'", durable, stream), js_error);
  }
  {
    std::lock_guard lock(subs_mutex);
    subs.insert(sub);
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  return Subscription([weak, sub] {
    auto impl = weak.lock();
    if (!impl) return;
    bool owner = false;
    {
      std::lock_guard lock(impl->subs_mutex);
      owner = impl->subs.erase(sub) > 0;
    }
    if (owner) impl->end(sub);  // else close() ended it
  });
}

// REQUIRES: called once per Sub, by whoever removed it from `subs` (or before it was added).
void NatsTransport::Impl::end(const std::shared_ptr<Sub>& sub) {
  for (natsSubscription* nats_sub : sub->nats_subs) {
    // JetStream: drain, so that messages nats.c holds already reach handle() and are given back
    // (nak) after the server has taken the interest away, instead of waiting out ack_wait. The
    // consumer survives: it was not made by nats.c's subscribe (which would delete it).
    if (jetstream_mode()) {
      (void)natsSubscription_Drain(nats_sub);
    } else {
      (void)natsSubscription_Unsubscribe(nats_sub);
    }
  }
  // Deliveries after this are turned away; this waits for those already inside (on other
  // threads). The natsSubscriptions are freed with the last reference to `sub`.
  sub->gate.close();
}

NatsTransport::NatsTransport(NatsTransportOptions options) {
  validate(options);
  impl_ = std::make_shared<Impl>(std::move(options));
  try {
    impl_->connect();
  } catch (...) {
    impl_->close();
    throw;
  }
}

NatsTransport::~NatsTransport() { impl_->close(); }

void NatsTransport::publish(const pubsub::Message& message) { impl_->publish(message); }

Subscription NatsTransport::subscribe(std::string_view pattern,
                                      const pubsub::SubscribeOptions& options,
                                      pubsub::Receiver receive) {
  return impl_->subscribe(pattern, options, std::move(receive));
}

void NatsTransport::flush() {
  check(natsConnection_FlushTimeout(impl_->connection,
                                    milliseconds(impl_->options.connection.request_timeout)),
        "flush");
}

bool NatsTransport::connected() const {
  return natsConnection_Status(impl_->connection) == NATS_CONN_STATUS_CONNECTED;
}

NatsMetrics NatsTransport::metrics() const {
  const Impl& i = *impl_;
  return {i.published.load(),    i.received.load(),    i.filtered.load(),  i.rejected.load(),
          i.acks.load(),         i.naks.load(),        i.terms.load(),     i.ack_failures.load(),
          i.async_errors.load(), i.disconnects.load(), i.reconnects.load()};
}

Subscription NatsTransport::register_metrics(MetricsRegistry& registry,
                                             std::string_view name) const {
  const std::string transport(name);
  std::vector<Subscription> parts;
  const auto add = [&](const char* metric, const char* help, const char* label, const char* value,
                       std::atomic<std::uint64_t> Impl::*field) {
    parts.push_back(registry.counter_fn(
        metric, help, {{"transport", transport}, {label, value}},
        [impl = impl_, field] { return static_cast<double>(((*impl).*field).load()); }));
  };
  const char* messages = "keel_nats_messages_total";
  const char* messages_help = "Messages through the NATS transport by what happened to them";
  add(messages, messages_help, "event", "published", &Impl::published);
  add(messages, messages_help, "event", "received", &Impl::received);
  add(messages, messages_help, "event", "filtered", &Impl::filtered);
  add(messages, messages_help, "event", "rejected", &Impl::rejected);
  const char* acks = "keel_nats_acks_total";
  const char* acks_help = "JetStream acknowledgements by kind";
  add(acks, acks_help, "kind", "ack", &Impl::acks);
  add(acks, acks_help, "kind", "nak", &Impl::naks);
  add(acks, acks_help, "kind", "term", &Impl::terms);
  add(acks, acks_help, "kind", "failed", &Impl::ack_failures);
  const char* events = "keel_nats_connection_events_total";
  const char* events_help = "Connection events of the NATS transport";
  add(events, events_help, "event", "disconnect", &Impl::disconnects);
  add(events, events_help, "event", "reconnect", &Impl::reconnects);
  add(events, events_help, "event", "async_error", &Impl::async_errors);
  return Subscription::all(std::move(parts));
}

}  // namespace keel::nats
