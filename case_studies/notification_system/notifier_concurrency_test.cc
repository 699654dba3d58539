// The pipeline on real threads (ThreadPoolScheduler executors, the steady clock): critical work
// keeps its own capacity while every standard worker is stuck in a slow provider, and concurrent
// submitters get every delivery sent exactly once. Waits are bounded real-time polls.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>

#include "case_studies/notification_system/notifier.h"
#include "case_studies/notification_system/sqlite_store.h"
#include "case_studies/notification_system/test_providers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace keel::notifier {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedProvider;

class NotifierConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int u = 0; u < 8; ++u) {
      store_.update_contacts(fmt::format("u{}", u), [](Contacts& c) {
        c.email = "ada@example.com";
        c.phone = "+33612345678";
      });
    }
  }
  NotificationRequest request(Channel channel, Priority priority, int i) {
    NotificationRequest r;
    r.user_id = fmt::format("u{}", i % 8);
    r.channels = {channel};
    r.priority = priority;
    r.category = "billing";
    r.body = fmt::format("n{}", i);
    return r;
  }
  NotifierOptions options() {
    NotifierOptions o;
    o.critical_workers = {.threads = 1};
    o.standard_workers = {.threads = 2};
    o.poll_interval = 50ms;
    o.user_limit = {.algorithm = ratelimit::Algorithm::token_bucket,
                    .rate_per_second = 1e6,
                    .amount = 1'000'000};
    return o;
  }

  keel::testing::TempDir dir_{"keel-notifier-concurrency"};
  SqliteNotificationStore store_{(dir_.path() / "notifier.db").string()};
  std::shared_ptr<ScriptedProvider> email_ =
      std::make_shared<ScriptedProvider>("email-test", default_clock());
  std::shared_ptr<ScriptedProvider> sms_ =
      std::make_shared<ScriptedProvider>("sms-test", default_clock());
  std::unique_ptr<Dispatcher> dispatcher_ = make_dispatcher(
      std::map<Channel, ChannelProviders>{{Channel::email, {email_}}, {Channel::sms, {sms_}}});
};

TEST_F(NotifierConcurrencyTest, CriticalDeliveriesHaveTheirOwnCapacity) {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  email_->on_send([&](const Message&) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 30s, [&] { return released; });
  });
  Notifier notifier(store_, *dispatcher_, options());
  notifier.start();
  for (int i = 0; i < 200; ++i) notifier.submit(request(Channel::email, Priority::low, i));
  ASSERT_TRUE(keel::testing::wait_until([&] { return email_->calls().size() == 2; }, 10s))
      << "both standard workers should be stuck in the slow provider";
  notifier.submit(request(Channel::sms, Priority::critical, 0));
  EXPECT_TRUE(keel::testing::wait_until([&] { return sms_->calls().size() == 1; }, 10s))
      << "a critical delivery waited behind the standard backlog";
  EXPECT_EQ(email_->calls().size(), 2u);
  {
    std::lock_guard lock(mu);
    released = true;
  }
  cv.notify_all();
  EXPECT_TRUE(keel::testing::wait_until([&] { return notifier.metrics().sent == 201; }, 60s))
      << notifier.metrics().sent;
  notifier.stop();
}

TEST_F(NotifierConcurrencyTest, ConcurrentSubmittersGetEveryDeliverySentOnce) {
  Notifier notifier(store_, *dispatcher_, options());
  notifier.start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        notifier.submit(request(n % 2 == 0 ? Channel::email : Channel::sms,
                                n % 5 == 0 ? Priority::critical : Priority::normal, n));
      }
    });
  }
  for (std::thread& t : submitters) t.join();
  ASSERT_TRUE(keel::testing::wait_until(
      [&] { return notifier.metrics().sent == kThreads * kPerThread; }, 60s))
      << notifier.metrics().sent;
  notifier.stop();
  std::map<std::string, int> per_delivery;
  for (const auto& call : email_->calls()) ++per_delivery[call.message.delivery_id];
  for (const auto& call : sms_->calls()) ++per_delivery[call.message.delivery_id];
  EXPECT_EQ(per_delivery.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const auto& [id, count] : per_delivery) EXPECT_EQ(count, 1) << id;
}

}  // namespace
}  // namespace keel::notifier
