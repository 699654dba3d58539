#include "case_studies/notification_system/api.h"

#include <fmt/format.h>

#include <charconv>

#include "keel/core/encoding.h"

namespace keel::notifier {

namespace {

using http::Method;
using http::Status;

http::Response invalid(const ValidationError& e) {
  return http::json_response(
      Status::bad_request,
      boost::json::object{
          {"error", {{"code", "invalid_request"}, {"field", e.field()}, {"message", e.what()}}}});
}

http::Response not_found(std::string_view what) {
  return http::error_response(Status::not_found, "not_found", fmt::format("no such {}", what));
}

// At intake (the 202 of a POST) the contract allows only "queued" or "scheduled": "scheduled"
// when every delivery still pending waits for a later time (send_at, quiet hours), else "queued"
// — accepted, with nothing held for later. That includes a notification whose every channel was
// skipped at intake: the deliveries' own statuses (`skipped`, with the reason in last_error) say
// that nothing will be sent; the overall status never claims more than they do. Later (GET, a
// cancel, the 200 of a repeated idempotency key) a notification whose every delivery is final
// (sent, failed, skipped, cancelled) is "done": "queued" would claim work still to come.
enum class Moment { intake, later };

std::string_view overall_status(const Notification& n, Moment moment) {
  bool scheduled = false;
  bool final = true;
  for (const Delivery& d : n.deliveries) {
    if (d.status == DeliveryStatus::queued || d.status == DeliveryStatus::sending) return "queued";
    scheduled = scheduled || d.status == DeliveryStatus::scheduled;
    final = final && is_final(d.status);
  }
  if (scheduled) return "scheduled";
  return moment == Moment::later && final ? "done" : "queued";
}

const std::string& user_id_of(http::Request& request) {
  const std::string& id = request.param("id");
  if (id.size() > kMaxUserIdBytes) {
    throw http::HttpError(Status::bad_request, "invalid_request", "user id too long");
  }
  return id;
}

}  // namespace

boost::json::object to_json(const Delivery& d) {
  return {{"id", d.id},
          {"channel", to_string(d.channel)},
          {"status", to_string(d.status)},
          {"attempts", d.attempts},
          {"last_error", d.last_error},
          {"updated_at", format_time(d.updated_at)},
          {"due_at", format_time(d.due_at)},
          {"provider", d.provider}};
}

namespace {

boost::json::object notification_json(const Notification& n, Moment moment) {
  boost::json::array deliveries;
  for (const Delivery& d : n.deliveries) deliveries.push_back(to_json(d));
  boost::json::object object{{"id", n.id},
                             {"user_id", n.user_id},
                             {"priority", to_string(n.priority)},
                             {"category", n.category},
                             {"status", overall_status(n, moment)},
                             {"created_at", format_time(n.created_at)},
                             {"send_at", n.send_at ? boost::json::value(format_time(*n.send_at))
                                                   : boost::json::value(nullptr)},
                             {"deliveries", std::move(deliveries)}};
  if (!n.idempotency_key.empty()) object["idempotency_key"] = n.idempotency_key;
  if (!n.template_name.empty()) object["template"] = n.template_name;
  return object;
}

}  // namespace

boost::json::object to_json(const Notification& n) { return notification_json(n, Moment::later); }

void Api::add_routes(http::Router& router) {
  const auto route = [&](Method method, std::string_view pattern,
                         http::Response (Api::*handler)(http::Request&)) {
    router.add(method, pattern, [this, handler](http::Request& r) { return (this->*handler)(r); });
  };
  route(Method::post, "/api/v1/notifications", &Api::create);
  route(Method::get, "/api/v1/notifications/{id}", &Api::show);
  route(Method::delete_, "/api/v1/notifications/{id}", &Api::cancel);
  route(Method::get, "/api/v1/users/{id}/preferences", &Api::get_preferences);
  route(Method::put, "/api/v1/users/{id}/preferences", &Api::put_preferences);
  route(Method::get, "/api/v1/users/{id}/contacts", &Api::get_contacts);
  route(Method::put, "/api/v1/users/{id}/contacts", &Api::put_contacts);
  route(Method::post, "/api/v1/deliveries/{id}/retry", &Api::retry);
  route(Method::get, "/api/v1/dead-letters", &Api::dead_letters);
}

http::Response Api::create(http::Request& request) {
  const boost::json::value body = request.json();
  NotificationRequest parsed;
  try {
    parsed = parse_notification_request(body, notifier_.options().templates);
    if (const auto header = request.header("Idempotency-Key")) {
      validate_idempotency_key(*header, "Idempotency-Key");
      if (!parsed.idempotency_key.empty() && parsed.idempotency_key != *header) {
        throw ValidationError("idempotency_key",
                              "idempotency_key and the Idempotency-Key header differ");
      }
      parsed.idempotency_key = std::string(*header);
    }
  } catch (const ValidationError& e) {
    return invalid(e);
  }
  const SubmitResult result = notifier_.submit(parsed);
  if (result.status == SubmitStatus::conflict) {
    return http::json_response(
        Status::unprocessable_entity,
        boost::json::object{
            {"error",
             {{"code", "idempotency_conflict"},
              {"message", fmt::format("idempotency key {} was used for another notification in "
                                      "the last 24 h",
                                      quote_for_message(parsed.idempotency_key))},
              {"id", result.notification.id}}}});
  }
  const bool created = result.status == SubmitStatus::created;
  return http::json_response(
      created ? Status::accepted : Status::ok,
      notification_json(result.notification, created ? Moment::intake : Moment::later));
}

http::Response Api::show(http::Request& request) {
  const std::optional<Notification> n = notifier_.find(request.param("id"));
  if (!n) return not_found("notification");
  return http::json_response(Status::ok, to_json(*n));
}

http::Response Api::cancel(http::Request& request) {
  const std::optional<CancelResult> result = notifier_.cancel(request.param("id"));
  if (!result) return not_found("notification");
  boost::json::object json = to_json(result->notification);
  boost::json::array cancelled;
  for (const std::string& id : result->cancelled) cancelled.emplace_back(id);
  json["cancelled"] = std::move(cancelled);
  return http::json_response(Status::ok, json);
}

http::Response Api::get_preferences(http::Request& request) {
  return http::json_response(
      Status::ok, to_json(notifier_.store().preferences(user_id_of(request), Pool::standard)));
}

http::Response Api::put_preferences(http::Request& request) {
  const boost::json::value body = request.json();
  try {
    const Preferences updated = notifier_.store().update_preferences(
        user_id_of(request), [&](Preferences& p) { apply_preferences_patch(p, body); });
    return http::json_response(Status::ok, to_json(updated));
  } catch (const ValidationError& e) {
    return invalid(e);
  }
}

http::Response Api::get_contacts(http::Request& request) {
  return http::json_response(
      Status::ok, to_json(notifier_.store().contacts(user_id_of(request), Pool::standard)));
}

http::Response Api::put_contacts(http::Request& request) {
  const boost::json::value body = request.json();
  try {
    const Contacts updated = notifier_.store().update_contacts(
        user_id_of(request), [&](Contacts& c) { apply_contacts_patch(c, body); });
    return http::json_response(Status::ok, to_json(updated));
  } catch (const ValidationError& e) {
    return invalid(e);
  }
}

http::Response Api::retry(http::Request& request) {
  const std::string& id = request.param("id");
  switch (notifier_.retry(id)) {
    case RetryResult::retried:
      return http::json_response(Status::accepted,
                                 boost::json::object{{"id", id}, {"status", "queued"}});
    case RetryResult::not_found:
      return not_found("delivery");
    case RetryResult::not_failed:
      break;
  }
  return http::error_response(Status::conflict, "not_failed",
                              "only a failed delivery can be retried by hand");
}

http::Response Api::dead_letters(http::Request& request) {
  std::size_t limit = 100;
  const std::string_view query = request.query();
  if (query.starts_with("limit=")) {
    const std::string_view digits = query.substr(6);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), limit);
    if (error != std::errc{} || end != digits.data() + digits.size() || limit == 0 ||
        limit > 1000) {
      return invalid(ValidationError("limit", "limit must be an integer from 1 to 1000"));
    }
  }
  boost::json::array items;
  for (const Delivery& d : notifier_.store().dead_letters(limit)) {
    boost::json::object item = to_json(d);
    item["notification_id"] = d.notification_id;
    items.push_back(std::move(item));
  }
  return http::json_response(Status::ok, boost::json::object{{"dead_letters", std::move(items)}});
}

}  // namespace keel::notifier
