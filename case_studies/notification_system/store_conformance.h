// The NotificationStore conformance suite: every store (SQLite, PostgreSQL) must pass it.
// Include it in one test file per store and instantiate it with a factory of environments:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
//                            ::testing::Values(StoreKind{"file", &make_environment}), store_name);
//
// An environment is one fresh database; open() may be called again to reopen it (a restart).
#pragma once

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>

#include "case_studies/notification_system/store.h"

namespace keel::notifier::testing {

class StoreEnvironment {
 public:
  virtual ~StoreEnvironment() = default;
  virtual std::unique_ptr<NotificationStore> open(QueueRules rules) = 0;
};
using EnvironmentFactory = std::unique_ptr<StoreEnvironment> (*)();

// The suite's parameter: a store's name (the test name's suffix) and its environments.
struct StoreKind {
  const char* name = "";
  EnvironmentFactory make = nullptr;
  friend void PrintTo(const StoreKind& kind, std::ostream* out) { *out << kind.name; }
};
inline std::string store_name(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param.name;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  static constexpr QueueRules kRules{.aging_step = std::chrono::minutes(5)};
  static constexpr Duration kLease = std::chrono::seconds(30);
  static constexpr int kMaxAttempts = 5;

  void SetUp() override {
    environment_ = GetParam().make();
    store_ = environment_->open(kRules);
  }

  // A notification created at `at` whose deliveries are queued (or scheduled) for `due`.
  Notification make(Priority priority, std::vector<Channel> channels, WallTime at,
                    std::optional<WallTime> due = std::nullopt, std::string key = {}) {
    Notification n;
    n.id = new_notification_id();
    n.user_id = "user-1";
    n.priority = priority;
    n.category = "billing";
    n.subject = "Invoice";
    n.body = "Your invoice is ready";
    n.idempotency_key = std::move(key);
    n.fingerprint = "f";
    n.created_at = at;
    for (const Channel channel : channels) {
      Delivery d;
      d.id = new_delivery_id();
      d.notification_id = n.id;
      d.channel = channel;
      d.due_at = due.value_or(at);
      d.status = due && *due > at ? DeliveryStatus::scheduled : DeliveryStatus::queued;
      d.updated_at = at;
      n.deliveries.push_back(d);
    }
    return n;
  }
  Notification add(Priority priority, WallTime at, std::optional<WallTime> due = std::nullopt) {
    Notification n = make(priority, {Channel::email}, at, due);
    EXPECT_TRUE(store_->insert(n, at - std::chrono::hours(24)).created);
    return n;
  }
  std::vector<std::string> claimed_ids(Pool pool, WallTime now, std::size_t max = 100) {
    std::vector<std::string> ids;
    for (const Claim& c : store_->claim(pool, now, kLease, max, kMaxAttempts))
      ids.push_back(c.notification.id);
    return ids;
  }
  DeliveryStatus status_of(const std::string& notification_id, std::size_t delivery = 0) {
    return store_->find(notification_id)->deliveries.at(delivery).status;
  }

  const WallTime t0_ = WallTime{std::chrono::seconds(1767225600)};
  std::unique_ptr<StoreEnvironment> environment_;
  std::unique_ptr<NotificationStore> store_;
};

using ::testing::ElementsAre;
using namespace std::chrono_literals;

TEST_P(StoreConformanceTest, InsertThenFindReturnsTheNotificationAndItsDeliveries) {
  Notification n = make(Priority::high, {Channel::sms, Channel::email}, t0_, t0_ + 1h, "key-1");
  n.send_at = t0_ + 1h;
  n.template_name = "invoice";
  ASSERT_TRUE(store_->insert(n, t0_ - 24h).created);
  const std::optional<Notification> found = store_->find(n.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->user_id, "user-1");
  EXPECT_EQ(found->priority, Priority::high);
  EXPECT_EQ(found->body, "Your invoice is ready");
  EXPECT_EQ(found->template_name, "invoice");
  EXPECT_EQ(found->send_at, t0_ + 1h);
  EXPECT_EQ(found->created_at, t0_);
  ASSERT_EQ(found->deliveries.size(), 2u);
  EXPECT_EQ(found->deliveries[0].channel, Channel::sms);
  EXPECT_EQ(found->deliveries[1].channel, Channel::email);
  EXPECT_EQ(found->deliveries[0].status, DeliveryStatus::scheduled);
  EXPECT_EQ(found->deliveries[0].due_at, t0_ + 1h);
  EXPECT_FALSE(store_->find("ntf_missing").has_value());
}

TEST_P(StoreConformanceTest, ClaimsByPriorityThenFirstInFirstOut) {
  const Notification normal_a = add(Priority::normal, t0_);
  const Notification low = add(Priority::low, t0_);
  const Notification high = add(Priority::high, t0_ + 1s);
  const Notification normal_b = add(Priority::normal, t0_ + 2s);
  const Notification critical = add(Priority::critical, t0_ + 3s);
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 3s),
              ElementsAre(high.id, normal_a.id, normal_b.id, low.id));
  EXPECT_THAT(claimed_ids(Pool::critical, t0_ + 3s), ElementsAre(critical.id));
}

TEST_P(StoreConformanceTest, ClaimTakesAtMostMaxInOrder) {
  const Notification low = add(Priority::low, t0_);
  const Notification high = add(Priority::high, t0_ + 1s);
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 1s, 1), ElementsAre(high.id));
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 1s, 1), ElementsAre(low.id));
  EXPECT_TRUE(claimed_ids(Pool::standard, t0_ + 1s, 1).empty());
}

TEST_P(StoreConformanceTest, AgingBoundsHowLongALowDeliveryWaits) {
  // aging_step 5 min: a low delivery ready at t0 ranks like a high one ready at t0 + 10 min.
  const Notification low = add(Priority::low, t0_);
  const Notification fresher_high = add(Priority::high, t0_ + 11min);
  const Notification older_high = add(Priority::high, t0_ + 9min);
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 11min),
              ElementsAre(older_high.id, low.id, fresher_high.id));
}

TEST_P(StoreConformanceTest, ScheduledDeliveriesWaitForTheirTime) {
  const Notification later = add(Priority::critical, t0_, t0_ + 1h);
  EXPECT_TRUE(claimed_ids(Pool::critical, t0_ + 59min).empty());
  EXPECT_EQ(store_->next_due(Pool::critical), t0_ + 1h);
  EXPECT_EQ(store_->next_due(Pool::standard), std::nullopt);
  EXPECT_THAT(claimed_ids(Pool::critical, t0_ + 1h), ElementsAre(later.id));
}

TEST_P(StoreConformanceTest, AClaimIsALeaseThatExpires) {
  const Notification n = add(Priority::normal, t0_);
  const std::vector<Claim> first = store_->claim(Pool::standard, t0_, kLease, 10, kMaxAttempts);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(store_->begin_send(first[0].delivery.id, first[0].lease_token, t0_, kLease), 1);
  EXPECT_TRUE(store_->claim(Pool::standard, t0_ + 29s, kLease, 10, kMaxAttempts).empty())
      << "a leased delivery must not be claimed by another worker";
  EXPECT_EQ(store_->next_due(Pool::standard), t0_ + kLease);

  // The worker died while sending: after the lease, the delivery is claimed (and sent) again.
  const std::vector<Claim> second =
      store_->claim(Pool::standard, t0_ + 30s, kLease, 10, kMaxAttempts);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery.id, first[0].delivery.id);
  EXPECT_THAT(second[0].delivery.last_error, ::testing::HasSubstr("lease expired"));
  EXPECT_EQ(store_->begin_send(second[0].delivery.id, second[0].lease_token, t0_ + 30s, kLease), 2);
  EXPECT_FALSE(store_->complete(first[0].delivery.id, first[0].lease_token, {}, t0_ + 31s))
      << "the first worker lost its lease: its result must not count";
  EXPECT_TRUE(store_->complete(second[0].delivery.id, second[0].lease_token,
                               {.status = DeliveryStatus::sent, .provider = "console"}, t0_ + 31s));
  const Delivery d = store_->find(n.id)->deliveries[0];
  EXPECT_EQ(d.status, DeliveryStatus::sent);
  EXPECT_EQ(d.attempts, 2);
  EXPECT_EQ(d.provider, "console");
}

TEST_P(StoreConformanceTest, AClaimWhoseLeaseRanOutBeforeTheSendIsNotSentAndTheSendRenewsIt) {
  const Notification n = add(Priority::normal, t0_);
  const std::vector<Claim> late = store_->claim(Pool::standard, t0_, kLease, 10, kMaxAttempts);
  ASSERT_EQ(late.size(), 1u);
  // The claim waited in a busy worker's queue past its lease: another worker may own it now.
  EXPECT_EQ(store_->begin_send(late[0].delivery.id, late[0].lease_token, t0_ + kLease, kLease),
            std::nullopt);
  const std::vector<Claim> again =
      store_->claim(Pool::standard, t0_ + kLease, kLease, 10, kMaxAttempts);
  ASSERT_EQ(again.size(), 1u);
  // Sent just before its lease ends, the send renews it: nobody takes it over mid-send.
  const WallTime start = t0_ + kLease + kLease - 1s;
  EXPECT_EQ(store_->begin_send(again[0].delivery.id, again[0].lease_token, start, kLease), 1);
  EXPECT_TRUE(store_->claim(Pool::standard, start + kLease - 1s, kLease, 10, kMaxAttempts).empty());
  EXPECT_TRUE(store_->complete(again[0].delivery.id, again[0].lease_token,
                               {.status = DeliveryStatus::sent}, start + kLease - 1s));
  EXPECT_EQ(status_of(n.id, 0), DeliveryStatus::sent);
}

TEST_P(StoreConformanceTest, CancelWinsOverAClaimNotYetSending) {
  const Notification n = make(Priority::normal, {Channel::email, Channel::sms}, t0_);
  store_->insert(n, t0_ - 24h);
  const std::vector<Claim> claims = store_->claim(Pool::standard, t0_, kLease, 10, kMaxAttempts);
  ASSERT_EQ(claims.size(), 2u);
  ASSERT_EQ(store_->begin_send(claims[1].delivery.id, claims[1].lease_token, t0_, kLease), 1);
  const auto cancelled = store_->cancel(n.id, t0_ + 1s);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_THAT(*cancelled, ElementsAre(claims[0].delivery.id)) << "the one already sending stays";
  EXPECT_EQ(store_->begin_send(claims[0].delivery.id, claims[0].lease_token, t0_ + 2s, kLease),
            std::nullopt)
      << "the worker's re-check must see the cancel";
  EXPECT_EQ(status_of(n.id, 0), DeliveryStatus::cancelled);
  EXPECT_EQ(status_of(n.id, 1), DeliveryStatus::sending);
  EXPECT_FALSE(store_->cancel("ntf_unknown", t0_).has_value());
}

TEST_P(StoreConformanceTest, ACancelWhileSendingEndsCancelledWhenTheAttemptWouldBeRetried) {
  const Notification failing = add(Priority::normal, t0_);
  const Notification sending = add(Priority::normal, t0_);
  const std::vector<Claim> c = store_->claim(Pool::standard, t0_, kLease, 10, kMaxAttempts);
  ASSERT_EQ(c.size(), 2u);
  for (const Claim& claim : c) {
    ASSERT_EQ(store_->begin_send(claim.delivery.id, claim.lease_token, t0_, kLease), 1);
  }
  EXPECT_THAT(*store_->cancel(failing.id, t0_ + 1s), ::testing::IsEmpty())
      << "a delivery already sending is not reported cancelled: the attempt may still send it";
  EXPECT_THAT(*store_->cancel(sending.id, t0_ + 1s), ::testing::IsEmpty());
  EXPECT_EQ(status_of(failing.id), DeliveryStatus::sending);

  // The attempt fails transiently: it must not be retried after the cancel.
  EXPECT_EQ(store_->complete(
                c[0].delivery.id, c[0].lease_token,
                {.status = DeliveryStatus::retrying, .error = "503", .due_at = t0_ + 2s}, t0_ + 2s),
            DeliveryStatus::cancelled);
  // The other attempt reached the provider: it is sent, and says so.
  EXPECT_EQ(store_->complete(c[1].delivery.id, c[1].lease_token,
                             {.status = DeliveryStatus::sent, .provider = "console"}, t0_ + 2s),
            DeliveryStatus::sent);
  const Delivery cancelled = store_->find(failing.id)->deliveries[0];
  EXPECT_EQ(cancelled.status, DeliveryStatus::cancelled);
  EXPECT_THAT(cancelled.last_error, ::testing::HasSubstr("cancelled while sending"));
  EXPECT_THAT(cancelled.last_error, ::testing::HasSubstr("503"));
  EXPECT_EQ(status_of(sending.id), DeliveryStatus::sent);
  EXPECT_TRUE(claimed_ids(Pool::standard, t0_ + 1h).empty()) << "nothing is retried";
}

TEST_P(StoreConformanceTest, AnExpiredLeaseOfACancelRequestedDeliveryIsNotRequeued) {
  const Notification n = add(Priority::normal, t0_);
  const std::vector<Claim> c = store_->claim(Pool::standard, t0_, kLease, 10, kMaxAttempts);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(store_->begin_send(c[0].delivery.id, c[0].lease_token, t0_, kLease), 1);
  store_->cancel(n.id, t0_ + 1s);
  // The worker sending it dies: the lease expires, and the cancel holds.
  EXPECT_TRUE(claimed_ids(Pool::standard, t0_ + kLease).empty());
  const Delivery d = store_->find(n.id)->deliveries[0];
  EXPECT_EQ(d.status, DeliveryStatus::cancelled);
  EXPECT_THAT(d.last_error, ::testing::HasSubstr("lease expired"));
  EXPECT_EQ(store_->next_due(Pool::standard), std::nullopt);
}

TEST_P(StoreConformanceTest, LeaseRecoveryGivesUpAfterMaxAttempts) {
  // A delivery that crashes (or hangs) its worker every time: each lost attempt counts.
  const Notification n = add(Priority::normal, t0_);
  constexpr int kAttempts = 3;
  WallTime now = t0_;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    const std::vector<Claim> c = store_->claim(Pool::standard, now, kLease, 10, kAttempts);
    ASSERT_EQ(c.size(), 1u) << "attempt " << attempt << " must be claimed again";
    ASSERT_EQ(store_->begin_send(c[0].delivery.id, c[0].lease_token, now, kLease), attempt);
    now += kLease;  // the worker is lost while sending
  }
  EXPECT_TRUE(store_->claim(Pool::standard, now, kLease, 10, kAttempts).empty())
      << "a third lost attempt of three must not be sent a fourth time";
  const Delivery d = store_->find(n.id)->deliveries[0];
  EXPECT_EQ(d.status, DeliveryStatus::failed);
  EXPECT_EQ(d.attempts, kAttempts);
  EXPECT_EQ(d.last_error,
            "gave up after 3 attempts: the lease expired 3 times while sending (worker lost or "
            "hung)");
  const std::vector<Delivery> dead = store_->dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, d.id);
  // Retried by hand, it starts over.
  EXPECT_EQ(store_->retry(d.id, now), RetryResult::retried);
  const std::vector<Claim> again = store_->claim(Pool::standard, now, kLease, 10, kAttempts);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(store_->begin_send(again[0].delivery.id, again[0].lease_token, now, kLease), 1);
}

TEST_P(StoreConformanceTest, IdempotencyKeysHoldTheFirstNotificationForTheirWindow) {
  const Notification first =
      make(Priority::normal, {Channel::email}, t0_, std::nullopt, "order-42");
  ASSERT_TRUE(store_->insert(first, t0_ - 24h).created);
  const Notification again =
      make(Priority::normal, {Channel::email}, t0_ + 1h, std::nullopt, "order-42");
  const InsertResult duplicate = store_->insert(again, t0_ + 1h - 24h);
  EXPECT_FALSE(duplicate.created);
  EXPECT_EQ(duplicate.notification.id, first.id);
  EXPECT_FALSE(store_->find(again.id).has_value()) << "a duplicate stores nothing";
  EXPECT_EQ(claimed_ids(Pool::standard, t0_ + 1h).size(), 1u);

  const Notification next_day =
      make(Priority::normal, {Channel::email}, t0_ + 25h, std::nullopt, "order-42");
  const InsertResult fresh = store_->insert(next_day, t0_ + 25h - 24h);
  EXPECT_TRUE(fresh.created) << "a key older than the window is forgotten";
  EXPECT_EQ(fresh.notification.id, next_day.id);
}

TEST_P(StoreConformanceTest, IdempotencyKeysAreScopedPerUser) {
  const Notification ada = make(Priority::normal, {Channel::email}, t0_, std::nullopt, "welcome");
  ASSERT_TRUE(store_->insert(ada, t0_ - 24h).created);
  Notification bob = make(Priority::normal, {Channel::email}, t0_, std::nullopt, "welcome");
  bob.user_id = "user-2";
  const InsertResult other_user = store_->insert(bob, t0_ - 24h);
  EXPECT_TRUE(other_user.created) << "another user's key must not block this one";
  EXPECT_EQ(other_user.notification.id, bob.id);
  const Notification ada_again =
      make(Priority::normal, {Channel::email}, t0_ + 1s, std::nullopt, "welcome");
  EXPECT_EQ(store_->insert(ada_again, t0_ + 1s - 24h).notification.id, ada.id);
}

TEST_P(StoreConformanceTest, RetriesWaitForTheirTimeAndUnavailableRefundsTheAttempt) {
  const Notification n = add(Priority::normal, t0_);
  std::vector<Claim> c = store_->claim(Pool::standard, t0_, kLease, 1, kMaxAttempts);
  ASSERT_EQ(store_->begin_send(c[0].delivery.id, c[0].lease_token, t0_, kLease), 1);
  ASSERT_TRUE(store_->complete(
      c[0].delivery.id, c[0].lease_token,
      {.status = DeliveryStatus::retrying, .error = "503", .due_at = t0_ + 2s}, t0_));
  EXPECT_TRUE(store_->claim(Pool::standard, t0_ + 1s, kLease, 1, kMaxAttempts).empty());
  EXPECT_EQ(store_->next_due(Pool::standard), t0_ + 2s);
  c = store_->claim(Pool::standard, t0_ + 2s, kLease, 1, kMaxAttempts);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(store_->begin_send(c[0].delivery.id, c[0].lease_token, t0_ + 2s, kLease), 2);
  ASSERT_TRUE(store_->complete(c[0].delivery.id, c[0].lease_token,
                               {.status = DeliveryStatus::retrying,
                                .error = "circuit open",
                                .due_at = t0_ + 10s,
                                .refund_attempt = true},
                               t0_ + 2s));
  const Delivery d = store_->find(n.id)->deliveries[0];
  EXPECT_EQ(d.status, DeliveryStatus::retrying);
  EXPECT_EQ(d.attempts, 1) << "waiting for an open breaker is not an attempt";
  EXPECT_EQ(d.last_error, "circuit open");
  EXPECT_EQ(d.due_at, t0_ + 10s);
}

TEST_P(StoreConformanceTest, FailedDeliveriesAreDeadLettersThatCanBeRetriedByHand) {
  const Notification n = add(Priority::normal, t0_);
  std::vector<Claim> c = store_->claim(Pool::standard, t0_, kLease, 1, kMaxAttempts);
  store_->begin_send(c[0].delivery.id, c[0].lease_token, t0_, kLease);
  ASSERT_TRUE(store_->complete(c[0].delivery.id, c[0].lease_token,
                               {.status = DeliveryStatus::failed, .error = "bad address"},
                               t0_ + 1s));
  const std::vector<Delivery> dead = store_->dead_letters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, c[0].delivery.id);
  EXPECT_EQ(dead[0].last_error, "bad address");
  EXPECT_EQ(store_->retry(c[0].delivery.id, t0_ + 1h), RetryResult::retried);
  EXPECT_EQ(store_->retry(c[0].delivery.id, t0_ + 1h), RetryResult::not_failed);
  EXPECT_EQ(store_->retry("dlv_unknown", t0_ + 1h), RetryResult::not_found);
  EXPECT_TRUE(store_->dead_letters(10).empty());
  const Delivery d = store_->find(n.id)->deliveries[0];
  EXPECT_EQ(d.status, DeliveryStatus::queued);
  EXPECT_EQ(d.attempts, 0);
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 1h), ElementsAre(n.id));
}

TEST_P(StoreConformanceTest, PreferencesAndContactsUpdatePartially) {
  EXPECT_TRUE(store_->preferences("u9", Pool::standard).channels.empty());
  store_->update_preferences("u9", [](Preferences& p) { p.channels["sms"] = false; });
  store_->update_preferences("u9", [](Preferences& p) {
    p.categories["marketing"] = false;
    p.quiet_hours =
        QuietHours{.start_minute = 22 * 60, .end_minute = 7 * 60, .time_zone = "Europe/Paris"};
  });
  const Preferences p = store_->preferences("u9", Pool::standard);
  EXPECT_FALSE(p.allows_channel(Channel::sms));
  EXPECT_TRUE(p.allows_channel(Channel::email));
  EXPECT_FALSE(p.allows_category("marketing"));
  ASSERT_TRUE(p.quiet_hours.has_value());
  EXPECT_EQ(p.quiet_hours->time_zone, "Europe/Paris");
  EXPECT_THROW(
      store_->update_preferences("u9", [](Preferences&) { throw ValidationError("x", "bad"); }),
      ValidationError);
  EXPECT_FALSE(store_->preferences("u9", Pool::standard).allows_channel(Channel::sms))
      << "a failed patch stores nothing";

  store_->update_contacts("u9", [](Contacts& c) { c.email = "a@example.com"; });
  store_->update_contacts("u9", [](Contacts& c) { c.phone = "+33612345678"; });
  const Contacts c = store_->contacts("u9", Pool::standard);
  EXPECT_EQ(c.email, "a@example.com");
  EXPECT_EQ(c.phone, "+33612345678");
  EXPECT_TRUE(store_->contacts("nobody", Pool::standard).email.empty());
}

TEST_P(StoreConformanceTest, DueTimesAndRetriesSurviveARestart) {
  const Notification scheduled = add(Priority::normal, t0_, t0_ + 1h);
  const Notification retried = add(Priority::critical, t0_);
  std::vector<Claim> c = store_->claim(Pool::critical, t0_, kLease, 1, kMaxAttempts);
  store_->begin_send(c[0].delivery.id, c[0].lease_token, t0_, kLease);
  store_->complete(c[0].delivery.id, c[0].lease_token,
                   {.status = DeliveryStatus::retrying, .error = "timeout", .due_at = t0_ + 4s},
                   t0_);
  store_.reset();
  store_ = environment_->open(kRules);
  EXPECT_EQ(store_->next_due(Pool::critical), t0_ + 4s);
  EXPECT_EQ(store_->next_due(Pool::standard), t0_ + 1h);
  EXPECT_THAT(claimed_ids(Pool::critical, t0_ + 4s), ElementsAre(retried.id));
  EXPECT_THAT(claimed_ids(Pool::standard, t0_ + 1h), ElementsAre(scheduled.id));
}

TEST_P(StoreConformanceTest, CountsDeliveriesByStatus) {
  add(Priority::normal, t0_);
  add(Priority::normal, t0_, t0_ + 1h);
  store_->claim(Pool::standard, t0_, kLease, 1, kMaxAttempts);
  const auto counts = store_->count_by_status();
  EXPECT_EQ(counts.at(DeliveryStatus::queued), 1) << "claimed counts as queued";
  EXPECT_EQ(counts.at(DeliveryStatus::scheduled), 1);
}

TEST_P(StoreConformanceTest, ConcurrentClaimersNeverShareADelivery) {
  constexpr int kDeliveries = 200;
  for (int i = 0; i < kDeliveries; ++i) add(Priority::normal, t0_);
  std::vector<std::unique_ptr<NotificationStore>> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(environment_->open(kRules));
  std::vector<std::vector<std::string>> taken(stores.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < stores.size(); ++i) {
    threads.emplace_back([&, i] {
      while (true) {
        const std::vector<Claim> claims =
            stores[i]->claim(Pool::standard, t0_, kLease, 7, kMaxAttempts);
        if (claims.empty()) return;
        for (const Claim& c : claims) taken[i].push_back(c.delivery.id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> unique;
  std::size_t total = 0;
  for (const auto& ids : taken) {
    total += ids.size();
    unique.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kDeliveries)) << "a delivery was claimed twice";
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kDeliveries));
}

}  // namespace keel::notifier::testing
