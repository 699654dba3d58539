// Click analytics for the shortener: each redirect publishes a click event on the bus (an
// asynchronous subscription queues it: the redirect never waits on analytics), and a read model
// folds the clicks into per-link totals, referrer counts and daily counts.
//
// What a click keeps is chosen for privacy: the referrer's host only ("direct" when none), the
// user-agent's class (browser, bot, cli, other), and the client address anonymised the way
// web analytics do it (IPv4 to its /24, IPv6 to its /48).
//
// Thread safety: every member is safe to call from any number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/clock.h"
#include "keel/core/subscription.h"
#include "keel/http/message.h"
#include "keel/pubsub/event_bus.h"

namespace keel::shortener {

inline constexpr std::string_view kClickTopic = "shortener.link.clicked";

struct Click {
  std::string code;
  WallTime at{};
  std::string referrer = "direct";  // host of the Referer header
  std::string agent = "other";      // browser, bot, cli, other
  std::string client;               // anonymised address
};

// What a redirect request tells about its click.
Click click_from_request(std::string_view code, const http::Request& request, WallTime at);
std::string referrer_host(std::string_view referer_header);
std::string agent_class(std::string_view user_agent);
std::string anonymise(const boost::asio::ip::address& address);

// Publishes clicks (and never throws: a click that cannot be published is counted and logged).
void publish_click(pubsub::EventBus& bus, const Click& click) noexcept;

struct LinkStats {
  std::uint64_t clicks = 0;
  std::vector<std::pair<std::string, std::uint64_t>> referrers;  // most clicks first
  std::vector<std::pair<std::string, std::uint64_t>> daily;      // "YYYY-MM-DD", oldest first
};

// What the API asks the analytics: the query side of the read model. Implementations: the
// in-process ClickAnalytics below, and the durable SqliteClickStats / PostgresClickStats of
// click_log.h.
class ClickStats {
 public:
  virtual ~ClickStats() = default;
  virtual LinkStats stats(std::string_view code) const = 0;
  virtual std::uint64_t total_clicks() const = 0;
};

// An in-process read model, fed by the click events of a bus: nothing survives a restart. The
// server uses the durable click log (click_log.h); this one serves tests and embedders that do
// not keep analytics.
class ClickAnalytics final : public ClickStats {
 public:
  explicit ClickAnalytics(pubsub::EventBus& bus);
  LinkStats stats(std::string_view code) const override;
  std::uint64_t total_clicks() const override;

 private:
  void apply(const pubsub::Message& message);

  struct PerLink {
    std::uint64_t clicks = 0;
    std::map<std::string, std::uint64_t> referrers;
    std::map<std::string, std::uint64_t> daily;
  };
  mutable std::mutex mutex_;
  std::map<std::string, PerLink, std::less<>> links_;
  std::uint64_t total_ = 0;
  Subscription subscription_;
};

}  // namespace keel::shortener
