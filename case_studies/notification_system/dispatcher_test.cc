// The Dispatcher on a ManualClock, over scripted providers (implementations of our own Provider
// port, not of a protocol): failover when a breaker opens, `unavailable` when every breaker is
// open, half-open recovery, permanent errors that leave the breaker closed, provider exceptions,
// metrics; and building dispatchers from the config, with errors naming the bad field.
#include "case_studies/notification_system/dispatcher.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json/parse.hpp>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;
using Kind = DispatchResult::Kind;

// Answers with a fixed outcome (or throws), counting calls.
class ScriptedProvider final : public Provider {
 public:
  explicit ScriptedProvider(std::string name, SendOutcome outcome = SendOutcome::sent)
      : name_(std::move(name)), outcome_(outcome) {}

  std::string_view name() const noexcept override { return name_; }
  SendResult send(const Message& message) override {
    std::lock_guard lock(mutex_);
    ++calls_;
    last_key_ = message.idempotency_key;
    if (throws_) throw std::runtime_error("provider bug");
    SendResult r{.outcome = outcome_, .error = outcome_ == SendOutcome::sent ? "" : "scripted"};
    if (outcome_ == SendOutcome::transient) r.retry_after = retry_after_;
    if (outcome_ == SendOutcome::sent) r.provider_message_id = fmt::format("{}-{}", name_, calls_);
    return r;
  }

  void answer(SendOutcome outcome) {
    std::lock_guard lock(mutex_);
    outcome_ = outcome;
    throws_ = false;
  }
  void throw_on_send() {
    std::lock_guard lock(mutex_);
    throws_ = true;
  }
  void retry_after(std::chrono::seconds s) {
    std::lock_guard lock(mutex_);
    retry_after_ = s;
  }
  int calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::string name_;
  SendOutcome outcome_;
  bool throws_ = false;
  std::optional<std::chrono::seconds> retry_after_;
  int calls_ = 0;
  std::string last_key_;
};

Message sms(std::string id = "d1") {
  return {.notification_id = "n1",
          .delivery_id = id,
          .idempotency_key = fmt::format("key-{}", id),
          .channel = Channel::sms,
          .user_id = "u1",
          .to = {.phone = "+33612345678"},
          .body = "hello"};
}

class DispatcherTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dispatcher> make(bool with_secondary = true) {
    std::map<Channel, ChannelProviders> providers;
    providers[Channel::sms] = {.primary = primary,
                               .secondary = with_secondary ? secondary : nullptr};
    return make_dispatcher(std::move(providers), {.clock = &clock,
                                                  .metrics = &metrics,
                                                  .console = &console,
                                                  .breaker_failure_threshold = 3,
                                                  .breaker_open_timeout = 60s});
  }

  ManualClock clock;
  MetricsRegistry metrics;
  std::ostringstream console;
  std::shared_ptr<ScriptedProvider> primary = std::make_shared<ScriptedProvider>("gw-a");
  std::shared_ptr<ScriptedProvider> secondary = std::make_shared<ScriptedProvider>("gw-b");
};

TEST_F(DispatcherTest, SendsThroughThePrimary) {
  const auto d = make();
  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::sent);
  EXPECT_EQ(r.provider, "gw-a");
  EXPECT_EQ(r.send.provider_message_id, "gw-a-1");
  EXPECT_EQ(secondary->calls(), 0);
}

TEST_F(DispatcherTest, TransientFailureIsReturnedNotFailedOverWhileTheBreakerIsClosed) {
  primary->answer(SendOutcome::transient);
  primary->retry_after(7s);
  const auto d = make();
  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::transient);
  EXPECT_EQ(r.provider, "gw-a");
  EXPECT_EQ(r.send.retry_after, 7s) << "the provider's Retry-After reaches the pipeline";
  EXPECT_EQ(secondary->calls(), 0) << "one attempt, one provider: no double send";
}

TEST_F(DispatcherTest, FailsOverToTheSecondaryWhenThePrimarysBreakerOpens) {
  primary->answer(SendOutcome::transient);
  const auto d = make();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(d->send(sms()).kind, Kind::transient);
  EXPECT_EQ(primary->calls(), 3);

  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::sent);
  EXPECT_EQ(r.provider, "gw-b");
  EXPECT_EQ(primary->calls(), 3) << "an open breaker does not call its provider";
  EXPECT_EQ(secondary->calls(), 1);
}

TEST_F(DispatcherTest, UnavailableWhenEveryBreakerIsOpenWithoutCallingAnyone) {
  primary->answer(SendOutcome::transient);
  secondary->answer(SendOutcome::transient);
  const auto d = make();
  for (int i = 0; i < 3; ++i) d->send(sms());  // opens the primary at t=0
  clock.advance(10s);
  for (int i = 0; i < 3; ++i) d->send(sms());  // the secondary, at t=10 s
  ASSERT_EQ(secondary->calls(), 3);

  clock.advance(5s);
  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::unavailable);
  EXPECT_EQ(primary->calls(), 3);
  EXPECT_EQ(secondary->calls(), 3);
  ASSERT_TRUE(r.retry_at.has_value());
  EXPECT_EQ(*r.retry_at, clock.now() + 45s) << "the primary's breaker reopens for a trial first";
  EXPECT_TRUE(r.provider.empty());
}

TEST_F(DispatcherTest, UnavailableWithoutASecondary) {
  primary->answer(SendOutcome::transient);
  const auto d = make(false);
  for (int i = 0; i < 3; ++i) d->send(sms());
  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::unavailable);
  EXPECT_EQ(r.retry_at, clock.now() + 60s);
}

TEST_F(DispatcherTest, HalfOpenTrialThatSucceedsClosesTheBreaker) {
  primary->answer(SendOutcome::transient);
  const auto d = make();
  for (int i = 0; i < 3; ++i) d->send(sms());
  EXPECT_EQ(d->send(sms()).provider, "gw-b");

  primary->answer(SendOutcome::sent);  // the gateway recovered
  clock.advance(60s);
  const DispatchResult trial = d->send(sms());
  EXPECT_EQ(trial.kind, Kind::sent);
  EXPECT_EQ(trial.provider, "gw-a") << "after open_timeout one trial goes to the primary";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d->send(sms()).provider, "gw-a");
  EXPECT_EQ(secondary->calls(), 1);
}

TEST_F(DispatcherTest, HalfOpenTrialThatFailsReopensForAnotherTimeout) {
  primary->answer(SendOutcome::transient);
  const auto d = make(false);
  for (int i = 0; i < 3; ++i) d->send(sms());
  clock.advance(60s);
  EXPECT_EQ(d->send(sms()).kind, Kind::transient) << "the trial call";
  EXPECT_EQ(primary->calls(), 4);
  const DispatchResult r = d->send(sms());
  EXPECT_EQ(r.kind, Kind::unavailable);
  EXPECT_EQ(r.retry_at, clock.now() + 60s);
  EXPECT_EQ(primary->calls(), 4);
}

TEST_F(DispatcherTest, PermanentErrorsDoNotOpenTheBreaker) {
  primary->answer(SendOutcome::permanent);
  const auto d = make();
  for (int i = 0; i < 20; ++i) {
    const DispatchResult r = d->send(sms());
    EXPECT_EQ(r.kind, Kind::permanent);
    EXPECT_EQ(r.provider, "gw-a");
  }
  EXPECT_EQ(primary->calls(), 20) << "a bad address says nothing about the gateway's health";
  EXPECT_EQ(secondary->calls(), 0);
}

TEST_F(DispatcherTest, ASuccessResetsTheConsecutiveFailures) {
  const auto d = make(false);
  for (int round = 0; round < 4; ++round) {
    primary->answer(SendOutcome::transient);
    d->send(sms());
    d->send(sms());
    primary->answer(SendOutcome::sent);
    EXPECT_EQ(d->send(sms()).kind, Kind::sent) << "round " << round;
  }
}

TEST_F(DispatcherTest, ProviderExceptionIsATransientFailureThatCountsForTheBreaker) {
  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  primary->throw_on_send();
  const auto d = make();
  d->send(sms());
  spdlog::set_default_logger(previous);
  EXPECT_THAT(log.str(), HasSubstr("provider gw-a (primary) threw while sending delivery d1: "
                                   "provider bug"));

  for (int i = 0; i < 2; ++i) {
    const DispatchResult r = d->send(sms());
    EXPECT_EQ(r.kind, Kind::transient);
    EXPECT_THAT(r.send.error, HasSubstr("provider bug"));
  }
  EXPECT_EQ(d->send(sms()).provider, "gw-b");
}

TEST_F(DispatcherTest, CountsSendsPerProviderAndOutcomeAndExposesBreakerState) {
  primary->answer(SendOutcome::transient);
  const auto d = make();
  for (int i = 0; i < 4; ++i) d->send(sms());
  const std::string page = metrics.render();
  EXPECT_THAT(
      page,
      HasSubstr(
          R"(keel_notifier_provider_sends_total{channel="sms",outcome="transient",provider="gw-a",role="primary"} 3)"));
  EXPECT_THAT(
      page,
      HasSubstr(
          R"(keel_notifier_provider_sends_total{channel="sms",outcome="rejected",provider="gw-a",role="primary"} 1)"));
  EXPECT_THAT(
      page,
      HasSubstr(
          R"(keel_notifier_provider_sends_total{channel="sms",outcome="sent",provider="gw-b",role="secondary"} 1)"));
  EXPECT_THAT(
      page,
      HasSubstr(
          R"(keel_circuit_breaker_state{breaker="notifier.sms.primary.gw-a",state="open"} 1)"));
  EXPECT_THAT(
      page,
      HasSubstr(
          R"(keel_circuit_breaker_state{breaker="notifier.sms.secondary.gw-b",state="closed"} 1)"));
}

TEST_F(DispatcherTest, TwoDispatchersCanShareARegistry) {
  const auto first = make();
  std::unique_ptr<Dispatcher> second;
  ASSERT_NO_THROW(second = make()) << "the breakers' series clash, sending must not";
  EXPECT_EQ(second->send(sms()).kind, Kind::sent);
  EXPECT_EQ(first->send(sms()).kind, Kind::sent);
  EXPECT_THAT(
      metrics.render(),
      HasSubstr(
          R"(keel_notifier_provider_sends_total{channel="sms",outcome="sent",provider="gw-a",role="primary"} 2)"));
}

TEST_F(DispatcherTest, ChannelsWithoutProvidersGoToTheConsole) {
  const auto d = make();
  Message m = sms();
  m.channel = Channel::email;
  m.to.email = "alice@example.com";
  const DispatchResult r = d->send(m);
  EXPECT_EQ(r.kind, Kind::sent);
  EXPECT_EQ(r.provider, "console");
  EXPECT_THAT(console.str(), HasSubstr("email to user u1 (alice@example.com)"));
}

TEST(DispatcherOptionsTest, RejectsBadBreakerSettingsAndMissingPrimary) {
  EXPECT_THROW(make_dispatcher(boost::json::value(), {.breaker_failure_threshold = 0}),
               std::invalid_argument);
  EXPECT_THROW(make_dispatcher(boost::json::value(), {.breaker_open_timeout = 0s}),
               std::invalid_argument);
  std::map<Channel, ChannelProviders> providers;
  providers[Channel::push] = {};
  EXPECT_THROW(make_dispatcher(std::move(providers)), std::invalid_argument);
}

// ---- configuration -------------------------------------------------------------------------

TEST(DispatcherConfigTest, NoConfigDeliversEveryChannelToTheConsole) {
  std::ostringstream out;
  ManualClock clock;
  const auto d = make_dispatcher(boost::json::value(), {.clock = &clock, .console = &out});
  for (const Channel c : {Channel::email, Channel::sms, Channel::push, Channel::webhook}) {
    Message m = sms();
    m.channel = c;
    const DispatchResult r = d->send(m);
    EXPECT_EQ(r.kind, Kind::sent) << to_string(c);
    EXPECT_EQ(r.provider, "console");
    EXPECT_THAT(out.str(), HasSubstr(fmt::format("{} to user u1", to_string(c))));
  }
}

TEST(DispatcherConfigTest, BuildsEveryProviderType) {
  const auto config = boost::json::parse(R"j({
    "email":   {"primary": {"type": "smtp", "url": "smtp://127.0.0.1:2525",
                            "from": "noreply@example.com", "from_name": "Keel",
                            "username": "u", "password": "p", "timeout_ms": 5000},
                "secondary": {"type": "http", "url": "https://mail-api.example.com/send"}},
    "sms":     {"primary": {"type": "http", "url": "http://127.0.0.1:9000/sms", "name": "gw-a",
                            "token": "t0k3n", "breaker": {"failure_threshold": 2,
                                                          "open_timeout_ms": 1000}},
                "secondary": {"type": "http", "url": "http://127.0.0.1:9001/sms", "name": "gw-b"}},
    "push":    {"primary": {"type": "console"}},
    "webhook": {"primary": {"type": "webhook", "secret": "whsec", "max_payload_bytes": 1024}}
  })j");
  MetricsRegistry metrics;
  ManualClock clock;
  std::unique_ptr<Dispatcher> dispatcher;
  ASSERT_NO_THROW(dispatcher = make_dispatcher(config, {.clock = &clock, .metrics = &metrics}));
  EXPECT_THAT(metrics.render(), HasSubstr(R"(breaker="notifier.sms.secondary.gw-b")"));
  EXPECT_THAT(metrics.render(), HasSubstr(R"(breaker="notifier.email.primary.smtp")"));
}

struct BadConfig {
  const char* json;
  const char* field;  // the message must name it
  const char* why;
};

class DispatcherBadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(DispatcherBadConfigTest, ThrowsNamingTheField) {
  const BadConfig& c = GetParam();
  const auto config = boost::json::parse(c.json);
  try {
    make_dispatcher(config);
    FAIL() << "accepted: " << c.json;
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr(c.field)) << c.json;
    EXPECT_THAT(e.what(), HasSubstr(c.why)) << c.json;
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2"))) << "a secret in an error message";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fields, DispatcherBadConfigTest,
    ::testing::Values(
        BadConfig{R"j([1, 2])j", "providers", "must be an object"},
        BadConfig{R"j({"fax": {"primary": {"type": "console"}}})j", "providers.fax",
                  "unknown channel"},
        BadConfig{R"j({"sms": {}})j", "providers.sms.primary", "missing"},
        BadConfig{R"j({"sms": {"primary": {"type": "console"}, "tertiary": {}}})j",
                  "providers.sms.tertiary", "unknown field"},
        BadConfig{R"j({"sms": {"primary": "http"}})j", "providers.sms.primary",
                  "must be an object"},
        BadConfig{R"j({"sms": {"primary": {"url": "http://x"}}})j", "providers.sms.primary.type",
                  "missing"},
        BadConfig{R"j({"sms": {"primary": {"type": "carrier-pigeon"}}})j",
                  "providers.sms.primary.type", "unknown provider type 'carrier-pigeon'"},
        BadConfig{R"j({"sms": {"primary": {"type": 3}}})j", "providers.sms.primary.type",
                  "must be a string"},
        BadConfig{R"j({"sms": {"primary": {"type": "http"}}})j", "providers.sms.primary.url",
                  "missing"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "ftp://x/sms"}}})j",
                  "providers.sms.primary.url", "must be an http or https URL"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "not a url"}}})j",
                  "providers.sms.primary.url", "must be an http or https URL"},
        BadConfig{R"j({"push": {"primary": {"type": "http", "url": "http://a:hunter2@x/p"}}})j",
                  "providers.push.primary.url", "credentials"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "http://x", "token": 5}}})j",
                  "providers.sms.primary.token", "must be a string"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "http://x",
                                           "token": "hunter2 x"}}})j",
                  "providers.sms.primary", "bearer_token"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "http://x",
                                           "timeout_ms": "10"}}})j",
                  "providers.sms.primary.timeout_ms", "must be an integer"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "http://x",
                                           "timeout_ms": 0}}})j",
                  "providers.sms.primary.timeout_ms", "must be > 0"},
        BadConfig{R"j({"sms": {"primary": {"type": "http", "url": "http://x", "tls": true}}})j",
                  "providers.sms.primary.tls", "unknown field"},
        BadConfig{R"j({"sms": {"primary": {"type": "smtp", "url": "smtp://x", "from": "a@b"}}})j",
                  "providers.sms.primary.type", "cannot deliver the sms channel"},
        BadConfig{R"j({"email": {"primary": {"type": "smtp", "url": "http://x", "from": "a@b"}}})j",
                  "providers.email.primary.url", "smtp://"},
        BadConfig{R"j({"email": {"primary": {"type": "smtp", "url": "smtp://x"}}})j",
                  "providers.email.primary.from", "missing"},
        BadConfig{R"j({"email": {"primary": {"type": "smtp", "url": "smtp://x",
                                             "from": "not an address"}}})j",
                  "providers.email.primary.from", "not a valid email address"},
        BadConfig{R"j({"email": {"primary": {"type": "smtp", "url": "smtp://x", "from": "a@b",
                                             "require_tls": "yes"}}})j",
                  "providers.email.primary.require_tls", "true or false"},
        BadConfig{R"j({"email": {"primary": {"type": "smtp", "url": "smtp://x", "from": "a@b",
                                             "password": "hunter2",
                                             "password_env": "SMTP_PW"}}})j",
                  "providers.email.primary.password", "not both"},
        BadConfig{R"j({"webhook": {"primary": {"type": "webhook"}}})j",
                  "providers.webhook.primary.secret", "missing"},
        BadConfig{R"j({"webhook": {"primary": {"type": "webhook",
                                               "secret_env": "KEEL_TEST_UNSET_VARIABLE"}}})j",
                  "providers.webhook.primary.secret_env", "is not set"},
        BadConfig{R"j({"webhook": {"primary": {"type": "http", "url": "http://x"}}})j",
                  "providers.webhook.primary.type", "cannot deliver the webhook channel"},
        BadConfig{R"j({"email": {"primary": {"type": "webhook", "secret": "hunter2"}}})j",
                  "providers.email.primary.type", "cannot deliver the email channel"},
        BadConfig{R"j({"webhook": {"primary": {"type": "webhook", "secret": "hunter2",
                                               "max_payload_bytes": -1}}})j",
                  "providers.webhook.primary.max_payload_bytes", "must be > 0"},
        BadConfig{R"j({"sms": {"primary": {"type": "console", "breaker": {"threshold": 1}}}})j",
                  "providers.sms.primary.breaker.threshold", "unknown field"},
        BadConfig{R"j({"sms": {"primary": {"type": "console",
                                           "breaker": {"failure_threshold": 0}}}})j",
                  "providers.sms.primary.breaker.failure_threshold", "must be > 0"},
        BadConfig{R"j({"sms": {"primary": {"type": "console", "breaker": []}}})j",
                  "providers.sms.primary.breaker", "must be an object"}));

TEST(DispatcherConfigTest, SecretsCanComeFromTheEnvironment) {
  ::setenv("KEEL_NOTIFIER_TEST_SECRET", "from-env", 1);
  const auto config = boost::json::parse(
      R"j({"webhook": {"primary": {"type": "webhook", "secret_env": "KEEL_NOTIFIER_TEST_SECRET"}}})j");
  EXPECT_NO_THROW(make_dispatcher(config));
  ::unsetenv("KEEL_NOTIFIER_TEST_SECRET");
}

}  // namespace
}  // namespace keel::notifier
