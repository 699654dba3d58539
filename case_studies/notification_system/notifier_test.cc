// The pipeline on a ManualClock and ManualScheduler: intake, preferences, priorities, retries,
// scheduling, cancel, dedup, rate limits and leases, with scripted providers behind the real
// dispatcher (make_dispatcher over test providers).
#include "case_studies/notification_system/notifier.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "case_studies/notification_system/sqlite_store.h"
#include "case_studies/notification_system/test_providers.h"
#include "tests/support/temp_dir.h"

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScriptedProvider;

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dispatcher_ =
        make_dispatcher(std::map<Channel, ChannelProviders>{{Channel::email, {email_}},
                                                            {Channel::sms, {sms_}},
                                                            {Channel::push, {push_}},
                                                            {Channel::webhook, {webhook_}}},
                        {.clock = &clock_});
    events_sub_ = bus_.subscribe("notifier.delivery.*", [this](const pubsub::Message& m) {
      const auto payload = boost::json::parse(m.payload);
      events_.push_back(
          fmt::format("{} {}", m.topic, std::string_view(payload.at("channel").as_string())));
    });
    for (const char* user : {"u1", "u2", "u3"}) {
      store_.update_contacts(user, [](Contacts& c) {
        c = {"ada@example.com", "+33612345678", "push-token", "https://hooks.example.com/n"};
      });
    }
  }

  NotifierOptions options() {
    NotifierOptions o;
    o.clock = &clock_;
    o.scheduler = &scheduler_;
    o.critical_workers = {.executor = &scheduler_, .threads = 1};
    o.standard_workers = {.executor = &scheduler_, .threads = 2};
    o.retry.jitter = Jitter::none;
    o.poll_interval = Duration::zero();
    o.events = &bus_;
    o.user_limit = {
        .algorithm = ratelimit::Algorithm::token_bucket, .rate_per_second = 100, .amount = 1000};
    return o;
  }
  void start(NotifierOptions o) {
    notifier_.reset();
    notifier_ = std::make_unique<Notifier>(store_, *dispatcher_, std::move(o));
    notifier_->start();
  }
  void start() { start(options()); }

  NotificationRequest request(std::vector<Channel> channels, Priority priority = Priority::normal,
                              std::string user = "u1", std::string category = "billing") {
    NotificationRequest r;
    r.user_id = std::move(user);
    r.channels = std::move(channels);
    r.priority = priority;
    r.category = std::move(category);
    r.subject = "Invoice";
    r.body = fmt::format("body {}", ++counter_);
    return r;
  }
  Notification submit(const NotificationRequest& r) {
    const SubmitResult result = notifier_->submit(r);
    EXPECT_EQ(result.status, SubmitStatus::created);
    return result.notification;
  }
  Delivery delivery(const Notification& n, std::size_t i = 0) {
    return notifier_->find(n.id)->deliveries.at(i);
  }
  // Seconds after t0 of each call to `provider`.
  static std::vector<double> call_times(const ScriptedProvider& provider, WallTime t0) {
    std::vector<double> times;
    for (const auto& call : provider.calls()) {
      times.push_back(std::chrono::duration<double>(call.at - t0).count());
    }
    return times;
  }

  int counter_ = 0;
  ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  keel::testing::TempDir dir_{"keel-notifier-test"};
  SqliteNotificationStore store_{(dir_.path() / "notifier.db").string()};
  std::shared_ptr<ScriptedProvider> email_ =
      std::make_shared<ScriptedProvider>("email-test", clock_);
  std::shared_ptr<ScriptedProvider> sms_ = std::make_shared<ScriptedProvider>("sms-test", clock_);
  std::shared_ptr<ScriptedProvider> push_ = std::make_shared<ScriptedProvider>("push-test", clock_);
  std::shared_ptr<ScriptedProvider> webhook_ =
      std::make_shared<ScriptedProvider>("webhook-test", clock_);
  std::unique_ptr<Dispatcher> dispatcher_;
  pubsub::EventBus bus_;
  Subscription events_sub_;
  std::vector<std::string> events_;
  std::unique_ptr<Notifier> notifier_;
};

TEST_F(NotifierTest, SendsEveryChannelAndPublishesEachStatus) {
  start();
  const Notification n = submit(request({Channel::email, Channel::sms}));
  EXPECT_EQ(n.deliveries[0].status, DeliveryStatus::queued);
  clock_.advance(0s);
  EXPECT_EQ(delivery(n, 0).status, DeliveryStatus::sent);
  EXPECT_EQ(delivery(n, 0).provider, "email-test");
  EXPECT_EQ(delivery(n, 0).due_at, n.created_at) << "a sent delivery keeps its due time";
  EXPECT_EQ(delivery(n, 1).status, DeliveryStatus::sent);
  ASSERT_EQ(email_->calls().size(), 1u);
  const Message m = email_->calls()[0].message;
  EXPECT_EQ(m.to.email, "ada@example.com");
  EXPECT_EQ(m.subject, "Invoice");
  EXPECT_EQ(m.priority, "normal");
  EXPECT_EQ(m.idempotency_key, n.deliveries[0].id) << "stable across retries: the delivery id";
  EXPECT_EQ(m.attempt, 1);
  EXPECT_THAT(events_,
              ElementsAre("notifier.delivery.sending email", "notifier.delivery.sent email",
                          "notifier.delivery.sending sms", "notifier.delivery.sent sms"));
  EXPECT_EQ(notifier_->metrics().sent, 2u);
}

TEST_F(NotifierTest, ACriticalDeliveryGoesBeforeABacklogOfNormalOnes) {
  std::vector<std::string> order;
  email_->on_send([&](const Message& m) { order.push_back(m.priority); });
  notifier_ = std::make_unique<Notifier>(store_, *dispatcher_, options());
  for (int i = 0; i < 5; ++i) notifier_->submit(request({Channel::email}));
  notifier_->submit(request({Channel::email}, Priority::critical));
  notifier_->start();
  clock_.advance(0s);
  EXPECT_THAT(order, ElementsAre("critical", "normal", "normal", "normal", "normal", "normal"));
}

TEST_F(NotifierTest, OptOutsSkipWithTheReasonExceptForMandatoryCategories) {
  store_.update_preferences("u2", [](Preferences& p) {
    p.channels["sms"] = false;
    p.categories["marketing"] = false;
  });
  start();
  const Notification billing =
      submit(request({Channel::email, Channel::sms}, Priority::normal, "u2"));
  const Notification marketing =
      submit(request({Channel::email}, Priority::low, "u2", "marketing"));
  const Notification security = submit(request({Channel::sms}, Priority::high, "u2", "security"));
  EXPECT_EQ(billing.deliveries[1].status, DeliveryStatus::skipped);
  EXPECT_EQ(billing.deliveries[1].last_error, "user opted out of sms");
  EXPECT_EQ(marketing.deliveries[0].last_error, "user opted out of category marketing");
  clock_.advance(0s);
  EXPECT_EQ(delivery(billing, 0).status, DeliveryStatus::sent);
  EXPECT_EQ(delivery(billing, 1).status, DeliveryStatus::skipped);
  EXPECT_EQ(delivery(marketing, 0).status, DeliveryStatus::skipped);
  EXPECT_EQ(delivery(security, 0).status, DeliveryStatus::sent) << "security ignores opt-outs";
  EXPECT_EQ(sms_->calls().size(), 1u);
}

TEST_F(NotifierTest, AChannelWithoutAnAddressIsSkipped) {
  start();
  const Notification n = submit(request({Channel::email}, Priority::normal, "stranger"));
  EXPECT_EQ(n.deliveries[0].status, DeliveryStatus::skipped);
  EXPECT_EQ(n.deliveries[0].last_error, "no email address for user stranger");
  clock_.advance(0s);
  EXPECT_TRUE(email_->calls().empty());
}

TEST_F(NotifierTest, TransientFailuresAreRetriedAfterTwoThenFourSeconds) {
  sms_->script({ScriptedProvider::transient("503 Service Unavailable"),
                ScriptedProvider::transient("timeout")});
  start();
  const WallTime t0 = clock_.wall_now();
  const Notification n = submit(request({Channel::sms}));
  clock_.advance(0s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::retrying);
  EXPECT_THAT(delivery(n).last_error,
              HasSubstr("503 Service Unavailable (attempt 1; next at 2026-01-01T00:00:02Z)"));
  clock_.advance(1900ms);
  EXPECT_EQ(sms_->calls().size(), 1u);
  clock_.advance(10s);
  EXPECT_THAT(call_times(*sms_, t0), ElementsAre(0.0, 2.0, 6.0));
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
  EXPECT_EQ(delivery(n).attempts, 3);
  EXPECT_EQ(sms_->calls()[2].message.attempt, 3);
  EXPECT_EQ(notifier_->metrics().retried, 2u);
}

TEST_F(NotifierTest, RetryAfterFromTheProviderIsHonoured) {
  SendResult throttled = ScriptedProvider::transient("429 Too Many Requests");
  throttled.retry_after = 30s;
  push_->script({throttled});
  start();
  const WallTime t0 = clock_.wall_now();
  const Notification n = submit(request({Channel::push}));
  clock_.advance(1min);
  EXPECT_THAT(call_times(*push_, t0), ElementsAre(0.0, 30.0));
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
}

TEST_F(NotifierTest, ARetryAfterShorterThanTheBackoffDoesNotShortenIt) {
  SendResult impatient = ScriptedProvider::transient("503 Service Unavailable");
  impatient.retry_after = 0s;
  SendResult long_wait = ScriptedProvider::transient("429 Too Many Requests");
  long_wait.retry_after = 3h;
  push_->script({impatient, long_wait});
  start();
  const WallTime t0 = clock_.wall_now();
  submit(request({Channel::push}));
  clock_.advance(2h);
  // Attempt 1: Retry-After 0 < backoff 2 s → 2 s. Attempt 2: Retry-After 3 h, capped at 1 h.
  EXPECT_THAT(call_times(*push_, t0), ElementsAre(0.0, 2.0, 3602.0));
}

TEST_F(NotifierTest, PermanentErrorsAreDeadLettersThatCanBeRetriedByHand) {
  email_->script({ScriptedProvider::permanent("550 no such mailbox")});
  start();
  const Notification n = submit(request({Channel::email}));
  clock_.advance(1h);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::failed);
  EXPECT_EQ(delivery(n).last_error, "email-test: 550 no such mailbox");
  EXPECT_EQ(email_->calls().size(), 1u) << "a permanent error is never retried";
  ASSERT_EQ(store_.dead_letters(10).size(), 1u);
  EXPECT_EQ(notifier_->retry(n.deliveries[0].id), RetryResult::retried);
  clock_.advance(0s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
  EXPECT_EQ(notifier_->retry(n.deliveries[0].id), RetryResult::not_failed);
}

TEST_F(NotifierTest, GivesUpAfterMaxAttempts) {
  webhook_->script({ScriptedProvider::transient("502"), ScriptedProvider::transient("502"),
                    ScriptedProvider::transient("502")});
  NotifierOptions o = options();
  o.retry.max_attempts = 3;
  start(o);
  const WallTime t0 = clock_.wall_now();
  const Notification n = submit(request({Channel::webhook}));
  clock_.advance(1h);
  EXPECT_THAT(call_times(*webhook_, t0), ElementsAre(0.0, 2.0, 6.0));
  EXPECT_EQ(delivery(n).status, DeliveryStatus::failed);
  EXPECT_EQ(delivery(n).attempts, 3);
  EXPECT_THAT(delivery(n).last_error, HasSubstr("gave up after 3 attempts"));
}

TEST_F(NotifierTest, RetryDelaysAreCappedAndJittered) {
  // Four failures: a fifth would open the provider's circuit breaker (its own test's business).
  webhook_->script(std::vector<SendResult>(4, ScriptedProvider::transient("502")));
  NotifierOptions o = options();
  o.retry.max_attempts = 10;
  o.retry.max_delay = 10s;
  o.retry.jitter = Jitter::equal;
  o.random = [] { return 0.5; };  // equal jitter: d/2 + 0.5 * d/2 = 3/4 of d
  start(o);
  const WallTime t0 = clock_.wall_now();
  submit(request({Channel::webhook}));
  clock_.advance(1h);
  // Waits 2, 4, 8, 10 (16 capped) s, each jittered to 3/4.
  EXPECT_THAT(call_times(*webhook_, t0), ElementsAre(0.0, 1.5, 4.5, 10.5, 18.0));
}

TEST_F(NotifierTest, SendAtHoldsTheDeliveryAcrossARestart) {
  start();
  NotificationRequest r = request({Channel::email});
  r.send_at = clock_.wall_now() + 1h;
  const Notification n = submit(r);
  EXPECT_EQ(n.deliveries[0].status, DeliveryStatus::scheduled);
  EXPECT_THAT(n.deliveries[0].last_error, HasSubstr("scheduled for 2026-01-01T01:00:00Z"));
  clock_.advance(59min);
  EXPECT_TRUE(email_->calls().empty());
  notifier_.reset();  // the process stops...
  start();            // ...and a new one picks the delivery up from the store
  clock_.advance(1min);
  EXPECT_EQ(email_->calls().size(), 1u);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
  EXPECT_EQ(delivery(n).updated_at, *r.send_at);
}

TEST_F(NotifierTest, QuietHoursHoldNonCriticalDeliveriesUntilTheyEnd) {
  // 2026-01-01T00:00Z is 01:00 in Paris: inside 22:00-07:00.
  store_.update_preferences("u3", [](Preferences& p) {
    p.quiet_hours =
        QuietHours{.start_minute = 22 * 60, .end_minute = 7 * 60, .time_zone = "Europe/Paris"};
  });
  start();
  const Notification normal = submit(request({Channel::email}, Priority::normal, "u3"));
  const Notification critical = submit(request({Channel::sms}, Priority::critical, "u3"));
  EXPECT_EQ(normal.deliveries[0].status, DeliveryStatus::scheduled);
  EXPECT_THAT(normal.deliveries[0].last_error,
              HasSubstr("quiet hours (Europe/Paris) until 2026-01-01T06:00:00Z"));
  clock_.advance(0s);
  EXPECT_EQ(delivery(critical).status, DeliveryStatus::sent) << "critical ignores quiet hours";
  clock_.advance(5h + 59min);
  EXPECT_EQ(delivery(normal).status, DeliveryStatus::scheduled);
  clock_.advance(1min);
  EXPECT_EQ(delivery(normal).status, DeliveryStatus::sent);
}

TEST_F(NotifierTest, AnOptOutAfterIntakeSkipsTheRetry) {
  sms_->script({ScriptedProvider::transient("503")});
  start();
  const Notification n = submit(request({Channel::sms}, Priority::normal, "u2"));
  clock_.advance(0s);
  ASSERT_EQ(delivery(n).status, DeliveryStatus::retrying);
  store_.update_preferences("u2", [](Preferences& p) { p.channels["sms"] = false; });
  clock_.advance(1min);
  EXPECT_EQ(sms_->calls().size(), 1u) << "retried after the user opted out";
  EXPECT_EQ(delivery(n).status, DeliveryStatus::skipped);
  EXPECT_EQ(delivery(n).last_error, "user opted out of sms");
  EXPECT_EQ(delivery(n).attempts, 1);
}

TEST_F(NotifierTest, QuietHoursSetAfterIntakeHoldAScheduledDeliveryUntilTheyEnd) {
  start();
  NotificationRequest r = request({Channel::email}, Priority::normal, "u3");
  r.send_at = clock_.wall_now() + 1h;  // 02:00 in Paris
  const Notification n = submit(r);
  store_.update_preferences("u3", [](Preferences& p) {
    p.quiet_hours =
        QuietHours{.start_minute = 22 * 60, .end_minute = 7 * 60, .time_zone = "Europe/Paris"};
  });
  clock_.advance(1h);
  EXPECT_TRUE(email_->calls().empty()) << "sent inside quiet hours set after intake";
  EXPECT_EQ(delivery(n).status, DeliveryStatus::scheduled);
  EXPECT_EQ(delivery(n).last_error, "quiet hours (Europe/Paris) until 2026-01-01T06:00:00Z");
  clock_.advance(5h);
  EXPECT_EQ(email_->calls().size(), 1u);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
}

TEST_F(NotifierTest, TheSameIdempotencyKeyReturnsTheFirstNotificationAndSendsOnce) {
  start();
  NotificationRequest r = request({Channel::email});
  r.idempotency_key = "order-42-shipped";
  const Notification first = submit(r);
  clock_.advance(1h);
  const SubmitResult again = notifier_->submit(r);
  EXPECT_EQ(again.status, SubmitStatus::duplicate);
  EXPECT_EQ(again.notification.id, first.id);
  NotificationRequest other = r;
  other.body = "something else";
  const SubmitResult conflict = notifier_->submit(other);
  EXPECT_EQ(conflict.status, SubmitStatus::conflict);
  EXPECT_EQ(conflict.notification.id, first.id);
  clock_.advance(1h);
  EXPECT_EQ(email_->calls().size(), 1u);
  clock_.advance(23h);
  EXPECT_EQ(notifier_->submit(r).status, SubmitStatus::created) << "keys are kept 24 h";
}

TEST_F(NotifierTest, CancelStopsDeliveriesNotYetSent) {
  start();
  NotificationRequest r = request({Channel::email, Channel::sms});
  r.send_at = clock_.wall_now() + 10min;
  const Notification n = submit(r);
  const std::optional<CancelResult> cancelled = notifier_->cancel(n.id);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->cancelled.size(), 2u);
  clock_.advance(1h);
  EXPECT_TRUE(email_->calls().empty());
  EXPECT_EQ(delivery(n, 0).status, DeliveryStatus::cancelled);
  EXPECT_FALSE(notifier_->cancel("ntf_nope").has_value());
}

TEST_F(NotifierTest, ACancelAfterTheClaimWinsAtTheRecheckBeforeSending) {
  // Both deliveries are claimed in one batch; the email provider cancels the notification while
  // it sends, so the already-claimed sms delivery must not go out.
  start();
  Notification n;
  email_->on_send([&](const Message&) { notifier_->cancel(n.id); });
  n = submit(request({Channel::email, Channel::sms}));
  clock_.advance(0s);
  EXPECT_EQ(delivery(n, 0).status, DeliveryStatus::sent);
  EXPECT_EQ(delivery(n, 1).status, DeliveryStatus::cancelled);
  EXPECT_TRUE(sms_->calls().empty());
  EXPECT_EQ(notifier_->metrics().cancel_won, 1u);
}

TEST_F(NotifierTest, ACancelDuringAnAttemptThatFailsTransientlyIsNotRetried) {
  // The cancel lands while the provider has the message; the provider then fails transiently.
  // Retrying would send a cancelled notification: the delivery ends cancelled instead.
  start();
  Notification n;
  email_->script({ScriptedProvider::transient("503 Service Unavailable")});
  email_->on_send([&](const Message&) {
    const std::optional<CancelResult> cancel = notifier_->cancel(n.id);
    ASSERT_TRUE(cancel.has_value());
    EXPECT_TRUE(cancel->cancelled.empty()) << "a delivery in flight is not reported cancelled";
  });
  n = submit(request({Channel::email}));
  clock_.advance(1h);
  EXPECT_EQ(email_->calls().size(), 1u) << "no retry after the cancel";
  EXPECT_EQ(delivery(n).status, DeliveryStatus::cancelled);
  EXPECT_THAT(delivery(n).last_error, HasSubstr("503 Service Unavailable"));
  EXPECT_THAT(events_,
              ElementsAre("notifier.delivery.sending email", "notifier.delivery.cancelled email"));
  EXPECT_EQ(notifier_->metrics().retried, 0u);
}

TEST_F(NotifierTest, ACancelDuringASuccessfulAttemptIsReportedSent) {
  start();
  Notification n;
  email_->on_send([&](const Message&) { notifier_->cancel(n.id); });
  n = submit(request({Channel::email}));
  clock_.advance(0s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent) << "the provider took it: say so";
}

TEST_F(NotifierTest, OverTheUserRateLimitDeliveriesAreHeldNotDropped) {
  NotifierOptions o = options();
  o.user_limit = {
      .algorithm = ratelimit::Algorithm::token_bucket, .rate_per_second = 1, .amount = 2};
  start(o);
  const WallTime t0 = clock_.wall_now();
  for (int i = 0; i < 4; ++i) submit(request({Channel::email}));
  const Notification critical = submit(request({Channel::sms}, Priority::critical));
  clock_.advance(0s);
  EXPECT_EQ(email_->calls().size(), 2u);
  EXPECT_EQ(delivery(critical).status, DeliveryStatus::sent) << "critical is not rate limited";
  clock_.advance(5s);
  EXPECT_THAT(call_times(*email_, t0), ElementsAre(0.0, 0.0, 1.0, 2.0));
  EXPECT_EQ(notifier_->metrics().rate_limited, 3u) << "held at t=0 twice, at t=1 once";
}

class UnavailableDispatcher final : public Dispatcher {
 public:
  explicit UnavailableDispatcher(const Clock& clock) : clock_(clock) {}
  DispatchResult send(const Message&) override {
    if (++calls_ <= 2) {
      return {.kind = DispatchResult::Kind::unavailable, .retry_at = clock_.now() + 30s};
    }
    return {.kind = DispatchResult::Kind::sent, .provider = "fallback"};
  }
  int calls_ = 0;

 private:
  const Clock& clock_;
};

TEST_F(NotifierTest, AnUnavailableProviderIsWaitedForWithoutCountingAttempts) {
  UnavailableDispatcher dispatcher(clock_);
  NotifierOptions o = options();
  o.retry.max_attempts = 1;
  notifier_ = std::make_unique<Notifier>(store_, dispatcher, o);
  notifier_->start();
  const Notification n = submit(request({Channel::email}));
  clock_.advance(0s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::retrying);
  EXPECT_EQ(delivery(n).attempts, 0);
  EXPECT_THAT(delivery(n).last_error, HasSubstr("circuit open"));
  clock_.advance(1min);
  EXPECT_EQ(dispatcher.calls_, 3);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent) << "max_attempts 1 was not used up by waits";
  EXPECT_EQ(delivery(n).attempts, 1);
}

TEST_F(NotifierTest, ADeliveryLeftSendingByACrashedWorkerIsSentAgainAfterItsLease) {
  NotifierOptions o = options();
  o.lease = 30s;
  start(o);
  notifier_->stop();  // intake only: nothing is claimed by this process yet
  const Notification n = submit(request({Channel::email}));
  // Another worker claimed it and died while sending.
  const std::vector<Claim> dead = store_.claim(Pool::standard, clock_.wall_now(), 30s, 10, 5);
  ASSERT_EQ(dead.size(), 1u);
  ASSERT_TRUE(store_.begin_send(dead[0].delivery.id, dead[0].lease_token, clock_.wall_now(), 30s));
  start(o);
  clock_.advance(29s);
  EXPECT_TRUE(email_->calls().empty());
  clock_.advance(1s);
  ASSERT_EQ(email_->calls().size(), 1u);
  EXPECT_EQ(email_->calls()[0].message.attempt, 2);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
}

TEST_F(NotifierTest, ADeliveryThatLosesItsWorkerEveryTimeEndsFailed) {
  // Workers that crash (or hang past the lease) on this delivery every time: the lost attempts
  // count towards max_attempts, so it ends in the dead letters instead of looping forever.
  NotifierOptions o = options();
  o.lease = 30s;
  o.retry.max_attempts = 2;
  start(o);
  notifier_->stop();
  const Notification n = submit(request({Channel::email}));
  for (int lost = 0; lost < 2; ++lost) {
    const std::vector<Claim> c = store_.claim(Pool::standard, clock_.wall_now(), 30s, 10, 2);
    ASSERT_EQ(c.size(), 1u);
    ASSERT_TRUE(store_.begin_send(c[0].delivery.id, c[0].lease_token, clock_.wall_now(), 30s));
    clock_.advance(30s);
  }
  start(o);
  clock_.advance(1h);
  EXPECT_TRUE(email_->calls().empty()) << "a third attempt of two was made";
  EXPECT_EQ(delivery(n).status, DeliveryStatus::failed);
  EXPECT_THAT(delivery(n).last_error, HasSubstr("the lease expired 2 times"));
}

TEST_F(NotifierTest, ProvidersThatThrowAreTreatedAsTransient) {
  email_->on_send([](const Message& m) {
    if (m.attempt == 1) throw std::runtime_error("bug in provider");
  });
  start();
  const Notification n = submit(request({Channel::email}));
  clock_.advance(0s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::retrying);
  EXPECT_THAT(delivery(n).last_error, HasSubstr("bug in provider"));
  clock_.advance(2s);
  EXPECT_EQ(delivery(n).status, DeliveryStatus::sent);
}

TEST(NotifierOptionsTest, InvalidOptionsAreRejected) {
  ManualClock clock;
  keel::testing::TempDir dir{"keel-notifier-options"};
  SqliteNotificationStore store((dir.path() / "n.db").string());
  auto dispatcher = make_dispatcher(boost::json::value(nullptr), {.clock = &clock});
  NotifierOptions bad;
  bad.retry.max_attempts = 0;
  EXPECT_THROW(Notifier(store, *dispatcher, bad), std::invalid_argument);
  NotifierOptions bad_delay;
  bad_delay.retry.max_delay = 1s;
  EXPECT_THROW(Notifier(store, *dispatcher, bad_delay), std::invalid_argument);
}

}  // namespace
}  // namespace keel::notifier
