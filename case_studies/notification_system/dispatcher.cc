// The Dispatcher: providers per channel behind circuit breakers, and their construction from the
// "providers" section of the config file. The format and the error classification are described
// in docs/notification_channels.md.
#include "case_studies/notification_system/dispatcher.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <cstdlib>
#include <iostream>
#include <set>
#include <stdexcept>
#include <utility>

#include "case_studies/notification_system/channels/console_provider.h"
#include "case_studies/notification_system/channels/http_provider.h"
#include "case_studies/notification_system/channels/internal/http_post.h"
#include "case_studies/notification_system/channels/smtp_provider.h"
#include "case_studies/notification_system/channels/webhook_provider.h"
#include "keel/core/encoding.h"
#include "keel/resilience/circuit_breaker.h"

namespace keel::notifier {
namespace {

namespace json = boost::json;
using resilience::CircuitBreaker;
using resilience::CircuitBreakerConfig;
using resilience::CircuitBreakerOpen;

constexpr std::array kChannels = {Channel::email, Channel::sms, Channel::push, Channel::webhook};
// When every breaker is half-open with its trial taken, the delivery waits at least this long.
constexpr Duration kMinimumWait = std::chrono::seconds(1);

// A provider with its breaker settings, before the dispatcher wraps it.
struct ProviderSpec {
  std::shared_ptr<Provider> provider = nullptr;
  int failure_threshold = 5;
  Duration open_timeout = std::chrono::seconds(30);
};

struct ChannelSpec {
  ProviderSpec primary = {};
  ProviderSpec secondary = {};  // provider == nullptr: none
};

// A transient outcome, thrown through CircuitBreaker::call so that it counts as a failure.
struct TransientFailure {
  SendResult result;
};

struct Slot {
  std::string role = {};  // "primary" or "secondary"
  std::shared_ptr<Provider> provider = nullptr;
  std::string provider_name = {};
  std::unique_ptr<CircuitBreaker> breaker = nullptr;
  // Per outcome, in the registry when there is one.
  Counter* sent = nullptr;
  Counter* transient = nullptr;
  Counter* permanent = nullptr;
  Counter* rejected = nullptr;
};

struct ChannelSlots {
  std::vector<Slot> slots = {};
  Counter* unavailable = nullptr;
};

DispatchResult::Kind kind_of(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::sent:
      return DispatchResult::Kind::sent;
    case SendOutcome::transient:
      return DispatchResult::Kind::transient;
    case SendOutcome::permanent:
      return DispatchResult::Kind::permanent;
  }
  return DispatchResult::Kind::transient;
}

void count(Counter* counter) {
  if (counter != nullptr) counter->inc();
}

class BreakerDispatcher final : public Dispatcher {
 public:
  BreakerDispatcher(std::map<Channel, ChannelSpec>&& specs, const DispatcherOptions& options)
      : clock_(options.clock != nullptr ? *options.clock : default_clock()) {
    for (auto& [channel, spec] : specs) {
      ChannelSlots& slots = channels_[channel];
      add_slot(channel, "primary", std::move(spec.primary), slots, options.metrics);
      if (spec.secondary.provider) {
        add_slot(channel, "secondary", std::move(spec.secondary), slots, options.metrics);
      }
      if (options.metrics != nullptr) {
        slots.unavailable = &options.metrics->counter(
            "keel_notifier_unavailable_total",
            "Deliveries that found every provider of their channel behind an open breaker",
            {{"channel", std::string(to_string(channel))}});
      }
    }
  }

  DispatchResult send(const Message& message) override {
    const auto found = channels_.find(message.channel);
    if (found == channels_.end()) {
      return {
          .kind = DispatchResult::Kind::permanent,
          .send = {.outcome = SendOutcome::permanent,
                   .error = fmt::format("no provider for channel {}", to_string(message.channel))}};
    }
    std::optional<Duration> wait;
    for (Slot& slot : found->second.slots) {
      if (auto result = try_slot(slot, message, wait)) return std::move(*result);
    }
    count(found->second.unavailable);
    return {.kind = DispatchResult::Kind::unavailable,
            .send = {},
            .provider = {},
            .retry_at = clock_.now() + std::max(wait.value_or(kMinimumWait), kMinimumWait)};
  }

 private:
  void add_slot(Channel channel, std::string role, ProviderSpec spec, ChannelSlots& slots,
                MetricsRegistry* metrics) {
    Slot slot{.role = std::move(role), .provider = std::move(spec.provider)};
    slot.provider_name = std::string(slot.provider->name());
    slot.breaker = std::make_unique<CircuitBreaker>(
        CircuitBreakerConfig{
            .name =
                fmt::format("notifier.{}.{}.{}", to_string(channel), slot.role, slot.provider_name),
            .failure_threshold = spec.failure_threshold,
            .open_timeout = spec.open_timeout,
        },
        clock_);
    if (metrics != nullptr) {
      const auto counter = [&](std::string_view outcome) {
        return &metrics->counter("keel_notifier_provider_sends_total",
                                 "Calls to notification providers by outcome (rejected: the "
                                 "provider's breaker was open and it was not called)",
                                 {{"channel", std::string(to_string(channel))},
                                  {"provider", slot.provider_name},
                                  {"role", slot.role},
                                  {"outcome", std::string(outcome)}});
      };
      slot.sent = counter("sent");
      slot.transient = counter("transient");
      slot.permanent = counter("permanent");
      slot.rejected = counter("rejected");
      try {
        subscriptions_.push_back(slot.breaker->register_metrics(*metrics));
      } catch (const std::invalid_argument& e) {
        // A second dispatcher on the same registry: its breakers' series would clash. Sending
        // works without them; the counters above are shared.
        spdlog::warn("notifier: breaker {} not exposed in the metrics: {}", slot.breaker->name(),
                     e.what());
      }
    }
    slots.slots.push_back(std::move(slot));
  }

  // The provider's answer; an exception (a provider bug) is a transient failure, logged.
  static SendResult invoke(Slot& slot, const Message& message) {
    try {
      return slot.provider->send(message);
    } catch (const std::exception& e) {
      spdlog::warn("notifier: provider {} ({}) threw while sending delivery {}: {}",
                   slot.provider_name, slot.role, message.delivery_id, e.what());
      return {.outcome = SendOutcome::transient,
              .error =
                  fmt::format("provider {} failed unexpectedly: {}", slot.provider_name, e.what())};
    } catch (...) {
      spdlog::warn("notifier: provider {} ({}) threw a non-standard exception for delivery {}",
                   slot.provider_name, slot.role, message.delivery_id);
      return {.outcome = SendOutcome::transient,
              .error = fmt::format("provider {} failed unexpectedly", slot.provider_name)};
    }
  }

  // The provider's answer, or nullopt (and `wait` lowered) when its breaker refused the call.
  std::optional<DispatchResult> try_slot(Slot& slot, const Message& message,
                                         std::optional<Duration>& wait) {
    try {
      SendResult result = slot.breaker->call([&] {
        SendResult r = invoke(slot, message);
        if (r.outcome == SendOutcome::transient) throw TransientFailure{std::move(r)};
        return r;  // sent, or permanent: the provider is healthy, the address is not
      });
      count(result.outcome == SendOutcome::sent ? slot.sent : slot.permanent);
      const DispatchResult::Kind kind = kind_of(result.outcome);
      return DispatchResult{
          .kind = kind, .send = std::move(result), .provider = slot.provider_name};
    } catch (const CircuitBreakerOpen& open) {
      count(slot.rejected);
      wait = std::min(wait.value_or(Duration::max()), open.retry_after());
      return std::nullopt;
    } catch (TransientFailure& failure) {
      count(slot.transient);
      return DispatchResult{.kind = DispatchResult::Kind::transient,
                            .send = std::move(failure.result),
                            .provider = slot.provider_name};
    }
  }

  const Clock& clock_;
  std::map<Channel, ChannelSlots> channels_;  // read-only after construction
  std::vector<Subscription> subscriptions_;   // breaker metrics; ended before the breakers
};

// ---- configuration -------------------------------------------------------------------------

[[noreturn]] void bad(const std::string& path, std::string_view what) {
  throw std::invalid_argument(fmt::format("{}: {}", path, what));
}

// One JSON object of the config, read field by field with errors naming the field.
class Fields {
 public:
  Fields(const json::value& value, std::string path) : path_(std::move(path)) {
    if (!value.is_object()) bad(path_, "must be an object");
    object_ = &value.as_object();
  }

  const std::string& path() const { return path_; }
  std::string at(std::string_view key) const { return fmt::format("{}.{}", path_, key); }
  bool has(std::string_view key) const { return object_->contains(key); }

  void only(const std::set<std::string_view>& known) const {
    for (const auto& [key, value] : *object_) {
      if (!known.contains(key)) {
        std::vector<std::string_view> sorted(known.begin(), known.end());
        bad(at(key), fmt::format("unknown field (expected one of: {})", fmt::join(sorted, ", ")));
      }
    }
  }

  const json::value* find(std::string_view key) const { return object_->if_contains(key); }

  std::optional<std::string> string(std::string_view key) const {
    const json::value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) bad(at(key), "must be a string");
    return std::string(v->get_string());
  }

  std::string required_string(std::string_view key) const {
    auto v = string(key);
    if (!v) bad(at(key), "missing");
    if (v->empty()) bad(at(key), "must not be empty");
    return *v;
  }

  // A secret: "<key>" in the file, or "<key>_env" naming an environment variable. Its value is
  // never put in an error message.
  std::string secret(std::string_view key, bool required) const {
    const std::string env_key = fmt::format("{}_env", key);
    if (has(key) && has(env_key))
      bad(at(key), fmt::format("give {} or {}, not both", key, env_key));
    if (auto env = string(env_key)) {
      // Read while the configuration is loaded, before worker threads start.
      const char* value = std::getenv(env->c_str());  // NOLINT(concurrency-mt-unsafe)
      if (value == nullptr || *value == '\0') {
        bad(at(env_key),
            fmt::format("environment variable {} is not set", quote_for_message(*env)));
      }
      return value;
    }
    auto v = string(key);
    if (required && (!v || v->empty())) bad(at(key), fmt::format("missing (or give {})", env_key));
    return v.value_or("");
  }

  bool boolean(std::string_view key, bool fallback) const {
    const json::value* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_bool()) bad(at(key), "must be true or false");
    return v->get_bool();
  }

  std::int64_t positive_integer(std::string_view key, std::int64_t fallback) const {
    const json::value* v = find(key);
    if (v == nullptr) return fallback;
    std::int64_t n = 0;
    if (v->is_int64()) {
      n = v->get_int64();
    } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      n = static_cast<std::int64_t>(v->get_uint64());
    } else {
      bad(at(key), "must be an integer");
    }
    if (n <= 0) bad(at(key), fmt::format("must be > 0, got {}", n));
    return n;
  }

  Duration millis(std::string_view key, Duration fallback) const {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(fallback).count();
    return std::chrono::milliseconds(positive_integer(key, ms));
  }

 private:
  std::string path_;
  const json::object* object_ = nullptr;
};

struct BuildContext {
  const Clock& clock;
  std::shared_ptr<ConsoleProvider> console;
  const DispatcherOptions& options;
};

std::shared_ptr<Provider> build_smtp(const Fields& f, const BuildContext& ctx) {
  f.only({"type", "name", "url", "from", "from_name", "username", "password", "password_env",
          "require_tls", "connect_timeout_ms", "timeout_ms", "breaker"});
  SmtpProviderOptions o{.url = f.required_string("url"), .from = f.required_string("from")};
  if (!o.url.starts_with("smtp://") && !o.url.starts_with("smtps://")) {
    bad(f.at("url"),
        fmt::format("must be an smtp:// or smtps:// URL, got {}", quote_for_message(o.url)));
  }
  if (!is_valid_email_address(o.from)) {
    bad(f.at("from"), fmt::format("not a valid email address: {}", quote_for_message(o.from)));
  }
  o.from_name = f.string("from_name").value_or("");
  o.username = f.string("username").value_or("");
  o.password = f.secret("password", false);
  o.require_tls = f.boolean("require_tls", false);
  o.connect_timeout = f.millis("connect_timeout_ms", o.connect_timeout);
  o.timeout = f.millis("timeout_ms", o.timeout);
  o.name = f.string("name").value_or(o.name);
  if (o.name.empty()) bad(f.at("name"), "must not be empty");
  return std::make_shared<SmtpProvider>(std::move(o), ctx.clock);
}

std::string checked_http_url(const Fields& f) {
  std::string url = f.required_string("url");
  std::string error;
  if (!internal::parse_http_url(url, error)) {
    // Not echoed: a URL may carry credentials.
    bad(f.at("url"), fmt::format("must be an http or https URL: {}", error));
  }
  return url;
}

std::shared_ptr<Provider> build_http(const Fields& f, const BuildContext& ctx) {
  f.only(
      {"type", "name", "url", "token", "token_env", "connect_timeout_ms", "timeout_ms", "breaker"});
  HttpProviderOptions o{.url = checked_http_url(f),
                        .bearer_token = f.secret("token", false),
                        .allowed_private_hosts = ctx.options.allowed_private_hosts};
  o.connect_timeout = f.millis("connect_timeout_ms", o.connect_timeout);
  o.timeout = f.millis("timeout_ms", o.timeout);
  o.name = f.string("name").value_or(o.name);
  if (o.name.empty()) bad(f.at("name"), "must not be empty");
  try {
    return std::make_shared<HttpProvider>(std::move(o), ctx.clock);
  } catch (const std::invalid_argument& e) {
    bad(f.path(), e.what());  // e.g. a token with spaces (the message does not show it)
  }
}

std::shared_ptr<Provider> build_webhook(const Fields& f, const BuildContext& ctx) {
  f.only({"type", "name", "secret", "secret_env", "connect_timeout_ms", "timeout_ms",
          "max_payload_bytes", "breaker"});
  WebhookProviderOptions o{.secret = f.secret("secret", true),
                           .allowed_private_hosts = ctx.options.allowed_private_hosts};
  o.connect_timeout = f.millis("connect_timeout_ms", o.connect_timeout);
  o.timeout = f.millis("timeout_ms", o.timeout);
  o.max_payload_bytes = static_cast<std::size_t>(
      f.positive_integer("max_payload_bytes", static_cast<std::int64_t>(o.max_payload_bytes)));
  o.name = f.string("name").value_or(o.name);
  if (o.name.empty()) bad(f.at("name"), "must not be empty");
  return std::make_shared<WebhookProvider>(std::move(o), ctx.clock);
}

ProviderSpec build_provider(Channel channel, const Fields& f, const BuildContext& ctx) {
  const std::string type = f.required_string("type");
  ProviderSpec spec{.failure_threshold = ctx.options.breaker_failure_threshold,
                    .open_timeout = ctx.options.breaker_open_timeout};
  const auto allowed = [&](std::initializer_list<Channel> channels) {
    if (std::find(channels.begin(), channels.end(), channel) == channels.end()) {
      bad(f.at("type"),
          fmt::format("a {} provider cannot deliver the {} channel", type, to_string(channel)));
    }
  };
  if (type == "console") {
    f.only({"type", "breaker"});
    spec.provider = ctx.console;
  } else if (type == "smtp") {
    allowed({Channel::email});
    spec.provider = build_smtp(f, ctx);
  } else if (type == "http") {
    allowed({Channel::email, Channel::sms, Channel::push});
    spec.provider = build_http(f, ctx);
  } else if (type == "webhook") {
    allowed({Channel::webhook});
    spec.provider = build_webhook(f, ctx);
  } else {
    bad(f.at("type"), fmt::format("unknown provider type {} (expected console, smtp, http or "
                                  "webhook)",
                                  quote_for_message(type)));
  }
  if (const json::value* breaker = f.find("breaker")) {
    const Fields b(*breaker, f.at("breaker"));
    b.only({"failure_threshold", "open_timeout_ms"});
    const std::int64_t threshold = b.positive_integer("failure_threshold", spec.failure_threshold);
    if (threshold > 1'000'000) bad(b.at("failure_threshold"), "must be at most 1000000");
    spec.failure_threshold = static_cast<int>(threshold);
    spec.open_timeout = b.millis("open_timeout_ms", spec.open_timeout);
  }
  return spec;
}

ProviderSpec default_spec(std::shared_ptr<Provider> provider, const DispatcherOptions& options) {
  return {.provider = std::move(provider),
          .failure_threshold = options.breaker_failure_threshold,
          .open_timeout = options.breaker_open_timeout};
}

void validate(const DispatcherOptions& options) {
  if (options.breaker_failure_threshold < 1) {
    throw std::invalid_argument(
        fmt::format("DispatcherOptions.breaker_failure_threshold: must be "
                    ">= 1, got {}",
                    options.breaker_failure_threshold));
  }
  if (options.breaker_open_timeout <= Duration::zero()) {
    throw std::invalid_argument("DispatcherOptions.breaker_open_timeout: must be > 0");
  }
}

}  // namespace

std::unique_ptr<Dispatcher> make_dispatcher(const json::value& config, DispatcherOptions options) {
  validate(options);
  const BuildContext ctx{.clock = options.clock != nullptr ? *options.clock : default_clock(),
                         .console = std::make_shared<ConsoleProvider>(
                             options.console != nullptr ? *options.console : std::cout),
                         .options = options};
  std::map<Channel, ChannelSpec> specs;
  if (!config.is_null()) {
    const Fields channels(config, "providers");
    for (const auto& [key, value] : config.as_object()) {
      const auto channel = parse_channel(key);
      if (!channel) {
        bad(channels.at(key), "unknown channel (expected email, sms, push or webhook)");
      }
      const Fields roles(value, channels.at(key));
      roles.only({"primary", "secondary"});
      const json::value* primary = roles.find("primary");
      if (primary == nullptr) bad(roles.at("primary"), "missing");
      ChannelSpec spec{.primary =
                           build_provider(*channel, Fields(*primary, roles.at("primary")), ctx)};
      if (const json::value* secondary = roles.find("secondary")) {
        spec.secondary = build_provider(*channel, Fields(*secondary, roles.at("secondary")), ctx);
      }
      specs.emplace(*channel, std::move(spec));
    }
  }
  for (const Channel c : kChannels) {
    if (!specs.contains(c))
      specs.emplace(c, ChannelSpec{.primary = default_spec(ctx.console, options)});
  }
  return std::make_unique<BreakerDispatcher>(std::move(specs), options);
}

std::unique_ptr<Dispatcher> make_dispatcher(std::map<Channel, ChannelProviders> providers,
                                            DispatcherOptions options) {
  validate(options);
  std::map<Channel, ChannelSpec> specs;
  std::shared_ptr<ConsoleProvider> console;
  for (const Channel c : kChannels) {
    const auto found = providers.find(c);
    if (found != providers.end() && found->second.primary == nullptr) {
      throw std::invalid_argument(
          fmt::format("make_dispatcher: channel {} has no primary provider", to_string(c)));
    }
    if (found == providers.end()) {
      if (!console) {
        console = std::make_shared<ConsoleProvider>(options.console != nullptr ? *options.console
                                                                               : std::cout);
      }
      specs.emplace(c, ChannelSpec{.primary = default_spec(console, options)});
      continue;
    }
    ChannelSpec spec{.primary = default_spec(std::move(found->second.primary), options)};
    if (found->second.secondary) {
      spec.secondary = default_spec(std::move(found->second.secondary), options);
    }
    specs.emplace(c, std::move(spec));
  }
  return std::make_unique<BreakerDispatcher>(std::move(specs), options);
}

}  // namespace keel::notifier
