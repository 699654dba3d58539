// Demo of the notification system case study on a manual clock: a burst of notifications where
// a critical one overtakes the normal backlog, a user opted out of SMS (skipped), an SMS gateway
// that fails twice (retried at 2 s and 4 s, then sent), a reminder scheduled for later and a
// duplicate idempotency key — then the timeline and the final statuses, as the store has them.
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <map>
#include <string>

#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/sqlite_store.h"
#include "case_studies/notification_system/test_providers.h"
#include "examples/demo.h"
#include "keel/pubsub.h"

namespace keel::demo {

namespace {

using notifier::Channel;
using notifier::Priority;

notifier::NotificationRequest make_request(std::string user, std::vector<Channel> channels,
                                           Priority priority, std::string category,
                                           std::string body) {
  notifier::NotificationRequest r;
  r.user_id = std::move(user);
  r.channels = std::move(channels);
  r.priority = priority;
  r.category = std::move(category);
  r.subject = body;
  r.body = std::move(body);
  return r;
}

}  // namespace

void run_notification_system_demo() {
  heading("Notification system: priorities, preferences, retries and scheduling on a manual clock");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("keel-notifier-demo-{}", getpid());
  std::filesystem::create_directories(dir);
  {
    ManualClock clock;
    ManualScheduler scheduler(clock);
    const WallTime t0 = clock.wall_now();
    notifier::SqliteNotificationStore store((dir / "notifier.db").string());
    auto email = std::make_shared<notifier::testing::ScriptedProvider>("smtp", clock);
    auto sms = std::make_shared<notifier::testing::ScriptedProvider>("sms-gateway", clock);
    // The SMS gateway answers 503 twice, then accepts.
    sms->script({notifier::testing::ScriptedProvider::transient("503 Service Unavailable"),
                 notifier::testing::ScriptedProvider::transient("503 Service Unavailable")});
    const auto dispatcher = notifier::make_dispatcher(
        std::map<Channel, notifier::ChannelProviders>{{Channel::email, {email}},
                                                      {Channel::sms, {sms}}},
        {.clock = &clock});

    pubsub::EventBus bus;
    std::map<std::string, std::string> who;  // notification id -> label
    std::vector<std::string> order;          // notification ids in submission order
    bool started = false;                    // intake outcomes are printed with "accepted"
    const Subscription timeline =
        bus.subscribe("notifier.delivery.*", [&](const pubsub::Message& m) {
          const auto event = boost::json::parse(m.payload);
          const std::string status(event.at("status").as_string());
          if (status == "sending" || !started) return;
          const std::string error(event.at("error").as_string());
          fmt::print("  t={:>8.3f}s  {:<24} {:<5} {}\n",
                     std::chrono::duration<double>(clock.wall_now() - t0).count(),
                     who[std::string(event.at("notification_id").as_string())],
                     std::string_view(event.at("channel").as_string()),
                     error.empty() ? status : fmt::format("{:<9} ({})", status, error));
        });

    notifier::NotifierOptions options;
    options.clock = &clock;
    options.scheduler = &scheduler;
    options.critical_workers = {.executor = &scheduler, .threads = 1};
    options.standard_workers = {.executor = &scheduler, .threads = 1};
    options.retry.jitter = Jitter::none;  // exactly 2 s, 4 s, ... for the demo
    options.poll_interval = Duration::zero();
    options.events = &bus;
    options.templates = {
        {"password_reset",
         {.subject = "Your reset code", .body = "Hi {{name}}, your code is {{code}}."}}};
    notifier::Notifier service(store, *dispatcher, options);

    for (const char* user : {"alice", "bob", "carol"}) {
      store.update_contacts(user, [&](notifier::Contacts& c) {
        c.email = fmt::format("{}@example.com", user);
        c.phone = "+33612345678";
      });
    }
    store.update_preferences("bob", [](notifier::Preferences& p) { p.channels["sms"] = false; });
    fmt::print(
        "  bob has opted out of SMS; the SMS gateway will fail twice before it recovers\n\n");

    const auto submit = [&](const std::string& label, const notifier::NotificationRequest& r) {
      const notifier::SubmitResult result = service.submit(r);
      if (who.emplace(result.notification.id, label).second)
        order.push_back(result.notification.id);
      std::string statuses;
      for (const notifier::Delivery& d : result.notification.deliveries) {
        statuses +=
            fmt::format(" {}={}", notifier::to_string(d.channel), notifier::to_string(d.status));
      }
      fmt::print("  accepted {:<24} {:<8}{}\n", label, notifier::to_string(r.priority), statuses);
      return result;
    };
    // A burst arrives before the workers run: four normal notifications, then a critical one.
    notifier::NotificationRequest digest =
        make_request("alice", {Channel::email}, Priority::normal, "digest", "Your weekly digest");
    digest.idempotency_key = "digest-2026-w01-alice";
    submit("digest for alice", digest);
    submit("invoice for bob", make_request("bob", {Channel::email, Channel::sms}, Priority::normal,
                                           "billing", "Your invoice is ready"));
    submit("parcel for carol", make_request("carol", {Channel::sms}, Priority::normal, "shipping",
                                            "Your parcel is out for delivery"));
    submit("digest for carol", make_request("carol", {Channel::email}, Priority::normal, "digest",
                                            "Your weekly digest"));
    notifier::NotificationRequest reset;
    reset.user_id = "alice";
    reset.channels = {Channel::email};
    reset.priority = Priority::critical;
    reset.category = "security";
    reset.template_name = "password_reset";
    reset.subject = "Your reset code";
    reset.body = "Hi Alice, your code is 482913.";
    submit("password reset for alice", reset);
    notifier::NotificationRequest reminder =
        make_request("alice", {Channel::email}, Priority::normal, "reminders", "Meeting at 10:00");
    reminder.send_at = t0 + std::chrono::hours(1);
    submit("reminder for alice", reminder);
    const notifier::SubmitResult again = service.submit(digest);
    fmt::print("  the digest again, same idempotency key -> {} (id {}, the first one's: {})\n",
               again.status == notifier::SubmitStatus::duplicate ? "duplicate" : "NEW",
               again.notification.id, who.contains(again.notification.id) ? "yes" : "no");

    fmt::print(
        "\n  timeline (workers start at t=0; critical and standard pools have their own "
        "capacity):\n");
    started = true;
    service.start();
    clock.advance(std::chrono::seconds(0));
    clock.advance(std::chrono::seconds(10));
    clock.advance(std::chrono::hours(1));

    fmt::print("\n  email provider calls, in order:");
    for (const auto& call : email->calls()) fmt::print(" {}", call.message.priority);
    fmt::print("\n  sms gateway calls at t =");
    for (const auto& call : sms->calls()) {
      fmt::print(" {:g}s", std::chrono::duration<double>(call.at - t0).count());
    }
    fmt::print("\n\n  final statuses (from the store):\n");
    for (const std::string& id : order) {
      const auto n = service.find(id);
      for (const notifier::Delivery& d : n->deliveries) {
        fmt::print("    {:<24} {:<5} {:<8} attempts={}{}\n", who[id],
                   notifier::to_string(d.channel), notifier::to_string(d.status), d.attempts,
                   d.last_error.empty() ? std::string() : fmt::format("  {}", d.last_error));
      }
    }
    const notifier::NotifierMetrics m = service.metrics();
    fmt::print("\n  sent {}, retried {}, skipped {}, duplicates {}\n", m.sent, m.retried, m.skipped,
               m.duplicates);
    service.stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace keel::demo
