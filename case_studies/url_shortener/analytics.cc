#include "case_studies/url_shortener/analytics.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

namespace keel::shortener {

namespace {

bool contains_ci(std::string_view haystack, std::string_view needle) {
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [](char a, char b) {
                                return std::tolower(static_cast<unsigned char>(a)) ==
                                       std::tolower(static_cast<unsigned char>(b));
                              });
  return it != haystack.end();
}

std::string day_of(WallTime at) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch());
  return fmt::format("{:%Y-%m-%d}", std::chrono::sys_seconds(seconds));
}

}  // namespace

std::string referrer_host(std::string_view referer) {
  if (referer.empty()) return "direct";
  const auto parsed = boost::urls::parse_uri(referer);
  if (!parsed || parsed->encoded_host().empty()) return "unknown";
  std::string host(parsed->encoded_host());
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host.size() > 253 ? std::string("unknown") : host;
}

std::string agent_class(std::string_view agent) {
  if (agent.empty()) return "other";
  for (const std::string_view bot : {"bot", "crawler", "spider", "slurp", "preview"}) {
    if (contains_ci(agent, bot)) return "bot";
  }
  for (const std::string_view cli : {"curl/", "wget/", "python-requests", "httpie", "go-http-client",
                                     "keel-http-client"}) {
    if (contains_ci(agent, cli)) return "cli";
  }
  if (contains_ci(agent, "mozilla/")) return "browser";
  return "other";
}

std::string anonymise(const boost::asio::ip::address& address) {
  if (address.is_v4()) {
    auto bytes = address.to_v4().to_bytes();
    bytes[3] = 0;
    return fmt::format("{}/24", boost::asio::ip::address_v4(bytes).to_string());
  }
  auto bytes = address.to_v6().to_bytes();
  std::fill(bytes.begin() + 6, bytes.end(), 0);
  return fmt::format("{}/48", boost::asio::ip::address_v6(bytes).to_string());
}

Click click_from_request(std::string_view code, const http::Request& request, WallTime at) {
  return Click{.code = std::string(code),
               .at = at,
               .referrer = referrer_host(request.header(http::Field::referer).value_or("")),
               .agent = agent_class(request.header(http::Field::user_agent).value_or("")),
               .client = anonymise(request.client_address)};
}

void publish_click(pubsub::EventBus& bus, const Click& click) noexcept {
  try {
    bus.publish_json(kClickTopic,
                     {{"code", click.code},
                      {"at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    click.at.time_since_epoch())
                                    .count()},
                      {"referrer", click.referrer},
                      {"agent", click.agent},
                      {"client", click.client}});
  } catch (...) {
    // Counted by the bus (dropped / failed publishes); a click is never worth a failed redirect.
  }
}

ClickAnalytics::ClickAnalytics(pubsub::EventBus& bus)
    : subscription_(bus.subscribe(
          kClickTopic, [this](const pubsub::Message& m) { apply(m); },
          {.name = "click-analytics",
           .delivery = pubsub::Delivery::asynchronous,
           .queue_capacity = 65'536,
           .overflow = pubsub::OverflowPolicy::drop_oldest})) {}

void ClickAnalytics::apply(const pubsub::Message& message) {
  const boost::json::object event = boost::json::parse(message.payload).as_object();
  const std::string code(event.at("code").as_string());
  const WallTime at{std::chrono::milliseconds{event.at("at_ms").as_int64()}};
  const std::lock_guard lock(mutex_);
  PerLink& link = links_[code];
  ++link.clicks;
  ++link.referrers[std::string(event.at("referrer").as_string())];
  ++link.daily[day_of(at)];
  ++total_;
}

LinkStats ClickAnalytics::stats(std::string_view code) const {
  const std::lock_guard lock(mutex_);
  LinkStats stats;
  const auto it = links_.find(code);
  if (it == links_.end()) return stats;
  stats.clicks = it->second.clicks;
  stats.referrers.assign(it->second.referrers.begin(), it->second.referrers.end());
  std::stable_sort(stats.referrers.begin(), stats.referrers.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  stats.daily.assign(it->second.daily.begin(), it->second.daily.end());
  return stats;
}

std::uint64_t ClickAnalytics::total_clicks() const {
  const std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace keel::shortener
