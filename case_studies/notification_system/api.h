// The notifier's HTTP API on keel/http (status codes and field names are the contract):
//
//   POST   /api/v1/notifications            {"user_id", "channels", "priority"?, "category",
//                                            "subject"?/"body" | "template" + "variables",
//                                            "send_at"?, "idempotency_key"?}
//            → 202 {"id", "status": "queued"|"scheduled", "deliveries": [...]}
//            → 200 the first notification for a known idempotency key (body field or the
//              Idempotency-Key header) with the same body; 422 idempotency_conflict with another
//            → 400 {"error": {"code": "invalid_request", "field", "message"}}
//   GET    /api/v1/notifications/{id}       → 200 {"id", "user_id", "priority", "category",
//                                              "deliveries": [{"id", "channel", "status",
//                                              "attempts", "last_error", "updated_at"}]}; 404
//   DELETE /api/v1/notifications/{id}       → 200 the notification plus "cancelled": [delivery
//                                              ids]; deliveries already sending or sent stay
//   PUT    /api/v1/users/{id}/preferences   partial update (keys left out stay); GET the same
//   PUT    /api/v1/users/{id}/contacts      {"email", "phone", "push_token", "webhook_url"}
//                                            partial update; GET the same
//   POST   /api/v1/deliveries/{id}/retry    a failed delivery back to the queue → 202; 404;
//                                            409 not_failed
//   GET    /api/v1/dead-letters             failed deliveries, most recent first (?limit=N)
// /metrics and /healthz are served by keel::http::Server.
//
// Thread safety: the handlers run on the server's threads; the Api holds no mutable state.
#pragma once

#include "case_studies/notification_system/notifier.h"
#include "keel/http/router.h"

namespace keel::notifier {

class Api {
 public:
  // `notifier` must outlive the Api and the router built from it.
  explicit Api(Notifier& notifier) : notifier_(notifier) {}

  // Adds the routes to `router`.
  void add_routes(http::Router& router);

 private:
  http::Response create(http::Request& request);
  http::Response show(http::Request& request);
  http::Response cancel(http::Request& request);
  http::Response get_preferences(http::Request& request);
  http::Response put_preferences(http::Request& request);
  http::Response get_contacts(http::Request& request);
  http::Response put_contacts(http::Request& request);
  http::Response retry(http::Request& request);
  http::Response dead_letters(http::Request& request);

  Notifier& notifier_;
};

// The JSON of a notification and of a delivery, as the API shows them.
boost::json::object to_json(const Notification& notification);
boost::json::object to_json(const Delivery& delivery);

}  // namespace keel::notifier
