// The notifier's outbound side: for each channel, a primary provider and optionally a secondary,
// each behind its own circuit breaker (keel/resilience). The delivery pipeline calls
// Dispatcher::send and acts on the outcome:
//
//   DispatchResult r = dispatcher.send(message);
//   sent        → the delivery is `sent` (r.provider says which provider took it)
//   transient   → retry later with backoff (r.send.retry_after honoured when set); counts as an attempt
//   permanent   → `failed` at once, no retry
//   unavailable → every provider of the channel has its breaker open: the delivery waits until
//                 r.retry_at (not counted as an attempt)
//
// Providers are built from the `providers` section of the --config file (see make_dispatcher);
// with no configuration every channel is delivered by the console provider.
//
// Thread safety: send() may be called from several worker threads at once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "case_studies/notification_system/provider.h"
#include "keel/core/clock.h"
#include "keel/core/metrics.h"

namespace keel::notifier {

struct DispatchResult {
  enum class Kind { sent, transient, permanent, unavailable } kind = Kind::sent;
  SendResult send = {};          // the provider's answer (empty when unavailable)
  std::string provider = {};     // name of the provider that answered
  std::optional<TimePoint> retry_at = std::nullopt;  // when unavailable: when a breaker may let a call through
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual DispatchResult send(const Message& message) = 0;
};

struct DispatcherOptions {
  const Clock* clock = nullptr;                  // nullptr = default_clock(); drives the breakers
  MetricsRegistry* metrics = nullptr;            // per-provider counters and breaker state when set
  std::ostream* console = nullptr;               // console provider output; nullptr = std::cout
  // Outbound HTTP (webhook, sms, push) may only reach public addresses, plus these (e.g. "127.0.0.1").
  std::vector<std::string> allowed_private_hosts = {};
  // Each provider's circuit breaker (a provider's "breaker" object in the config overrides
  // them): consecutive transient failures (or exceptions) that open it, and how long it stays
  // open before one trial call is let through. Defaults: 5 failures, 30 s.
  int breaker_failure_threshold = 5;
  Duration breaker_open_timeout = std::chrono::seconds(30);
};

// Builds the dispatcher from the "providers" object of the config file, e.g.
//   {"email":   {"primary": {"type": "smtp", "url": "smtp://127.0.0.1:2525", "from": "noreply@example.com"}},
//    "sms":     {"primary": {"type": "http", "url": "http://127.0.0.1:9000/sms"},
//                "secondary": {"type": "http", "url": "http://127.0.0.1:9001/sms"}},
//    "webhook": {"primary": {"type": "webhook", "secret": "..."}}}
// A channel not named uses the console provider. `config` may be null (all console).
// Throws std::invalid_argument naming the bad field for an invalid configuration.
// Every provider field (timeouts, names, per-provider "breaker", secrets given as "*_env"
// environment variables) and the error classification: docs/notification_channels.md.
// The clock, metrics registry and console stream of `options` must outlive the dispatcher. With
// two dispatchers on one registry, the second one's breaker series are skipped (logged).
std::unique_ptr<Dispatcher> make_dispatcher(const boost::json::value& config, DispatcherOptions options = {});

// A dispatcher over providers the caller built (tests, demos): channel → {primary, secondary?}.
// Channels not in the map use the console provider; a null primary throws std::invalid_argument.
struct ChannelProviders {
  std::shared_ptr<Provider> primary;
  std::shared_ptr<Provider> secondary = nullptr;
};
std::unique_ptr<Dispatcher> make_dispatcher(std::map<Channel, ChannelProviders> providers,
                                            DispatcherOptions options = {});

}  // namespace keel::notifier
