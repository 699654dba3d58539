// The shortener's HTTP API on keel/http (status codes and field names are the contract):
//
//   POST   /api/v1/links          {"url", "alias"?, "expires_at"? (RFC 3339)}
//                                  → 201 {"code","short_url","url","created_at","expires_at"}
//                                  → 200 with the existing link for a URL already shortened
//   GET    /{code}  (and HEAD)     → 302 Location (no caching) or, with redirect_status 301,
//                                    301 with Cache-Control: private, max-age=N; 404; 410
//   GET    /api/v1/links/{code}   → the link plus {"clicks","referrers":[…],"daily":[…]}
//   DELETE /api/v1/links/{code}   → 204 with Authorization: Bearer <admin token>; 401 otherwise
//   GET    /  and  /{code}+       → the web page: shorten a URL; a link's stats (web.h)
//
// Errors are {"error": {"code", "message"}}: 400 invalid_json / invalid_url / invalid_alias /
// invalid_expiry, 409 alias_taken, 413 (the server's body limit), 429 rate_limited with
// Retry-After and RateLimit headers when a client address creates links too fast.
//
// A redirect's Location is the stored URL and nothing else from the request; each redirect
// publishes a click (analytics.h) without waiting for it.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "case_studies/url_shortener/analytics.h"
#include "case_studies/url_shortener/shortener.h"
#include "keel/core/rfc3339.h"
#include "keel/http/router.h"
#include "keel/pubsub/event_bus.h"
#include "keel/ratelimit/keyed_rate_limiter.h"
#include "keel/ratelimit/limit.h"

namespace keel::shortener {

struct ApiOptions {
  // DELETE needs it; empty = deletion disabled (always 401).
  std::string admin_token = {};
  // 302 (default) or 301.
  int redirect_status = 302;
  // Cache-Control max-age of permanent redirects.
  std::chrono::seconds permanent_max_age = std::chrono::hours(1);
  // Link creations per client address: a token bucket. Default: bursts of 20, 2 per second.
  ratelimit::Limit create_limit = {.algorithm = ratelimit::Algorithm::token_bucket,
                                   .rate_per_second = 2,
                                   .amount = 20};
  const Clock* clock = nullptr;  // nullptr = default_clock()
};

class Api {
 public:
  // All referenced objects must outlive the Api and the router built from it. Throws
  // std::invalid_argument for a redirect status other than 301 or 302.
  Api(Shortener& shortener, pubsub::EventBus& bus, ClickStats& analytics,
      ApiOptions options = {});

  // Adds the routes to `router`, the web page's (add_web_routes) included.
  void add_routes(http::Router& router);

 private:
  http::Response create(http::Request& request);
  http::Response follow(http::Request& request);
  http::Response show(http::Request& request);
  http::Response remove(http::Request& request);
  bool authorised(const http::Request& request) const;

  Shortener& shortener_;
  pubsub::EventBus& bus_;
  ClickStats& analytics_;
  ApiOptions options_;
  const Clock& clock_;
  ratelimit::KeyedRateLimiter create_limiter_;
};

// The key a client's link creations are counted under: the TCP peer's address (headers such as
// X-Forwarded-For are not trusted), an IPv4-mapped IPv6 address as its IPv4 address, and an IPv6
// address by its /64 prefix ("2001:db8:1:2::/64"): one subscriber usually holds a whole /64, and a
// key per address would give them 2^64 budgets.
std::string creation_limit_key(const boost::asio::ip::address& client);

// Timestamps in the JSON (created_at, expires_at) are RFC 3339: keel/core/rfc3339.h.
using keel::format_rfc3339;
using keel::parse_rfc3339;

}  // namespace keel::shortener
