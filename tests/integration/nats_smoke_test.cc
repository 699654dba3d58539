// A real nats-server answers nats.c, core subjects and JetStream: the ground the NATS adapter
// stands on.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/nats_server.h"

namespace keel::testing {
namespace {

struct NatsDeleter {
  void operator()(natsConnection* p) const { natsConnection_Destroy(p); }
  void operator()(natsSubscription* p) const { natsSubscription_Destroy(p); }
  void operator()(natsMsg* p) const { natsMsg_Destroy(p); }
  void operator()(jsCtx* p) const { jsCtx_Destroy(p); }
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
};
template <typename T>
using NatsPtr = std::unique_ptr<T, NatsDeleter>;

constexpr int64_t kReceiveTimeoutMs = 5000;

std::string status_text(natsStatus status) { return natsStatus_GetText(status); }

class NatsSmokeTest : public ::testing::Test {
 protected:
  // One server for the suite; a failed start fails every test with the reason (never a skip).
  static void SetUpTestSuite() {
    try {
      server_ = NatsServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start nats-server: " << start_error_;
    natsConnection* connection = nullptr;
    const natsStatus status = natsConnection_ConnectTo(&connection, server_->url().c_str());
    connection_.reset(connection);
    ASSERT_EQ(status, NATS_OK) << "connect to " << server_->url() << ": " << status_text(status);
  }

  NatsPtr<natsSubscription> subscribe(const char* subject) {
    natsSubscription* subscription = nullptr;
    const natsStatus status =
        natsConnection_SubscribeSync(&subscription, connection_.get(), subject);
    EXPECT_EQ(status, NATS_OK) << "subscribe " << subject << ": " << status_text(status);
    return NatsPtr<natsSubscription>(subscription);
  }

  // The subjects of the next `count` messages, in order ("<timeout>" for each one missing).
  static std::vector<std::string> next_subjects(natsSubscription* subscription, int count) {
    std::vector<std::string> subjects;
    for (int i = 0; i < count; ++i) {
      natsMsg* message = nullptr;
      const natsStatus status = natsSubscription_NextMsg(&message, subscription, kReceiveTimeoutMs);
      const NatsPtr<natsMsg> owned(message);
      if (status == NATS_OK) {
        subjects.emplace_back(natsMsg_GetSubject(message));
      } else {
        subjects.push_back(fmt::format("<{}>", status_text(status)));
      }
    }
    return subjects;
  }

  static inline std::unique_ptr<NatsServer> server_;
  static inline std::string start_error_;
  NatsPtr<natsConnection> connection_;
};

TEST_F(NatsSmokeTest, StarMatchesOneTokenAndGreaterThanMatchesTheRest) {
  const auto one_token = subscribe("orders.*");
  const auto any_tail = subscribe("orders.>");
  ASSERT_NE(one_token, nullptr);
  ASSERT_NE(any_tail, nullptr);
  ASSERT_EQ(natsConnection_Flush(connection_.get()), NATS_OK);

  for (const char* subject : {"orders.created", "orders.created.eu", "orders.end"}) {
    ASSERT_EQ(natsConnection_PublishString(connection_.get(), subject, "{}"), NATS_OK) << subject;
  }
  ASSERT_EQ(natsConnection_Flush(connection_.get()), NATS_OK);

  // Per subscription, messages arrive in publish order: orders.end arriving right after
  // orders.created proves `*` did not receive the two-token orders.created.eu.
  EXPECT_EQ(next_subjects(one_token.get(), 2),
            (std::vector<std::string>{"orders.created", "orders.end"}));
  EXPECT_EQ(next_subjects(any_tail.get(), 3),
            (std::vector<std::string>{"orders.created", "orders.created.eu", "orders.end"}));
}

TEST_F(NatsSmokeTest, JetStreamStoresAndAcknowledgesAPublishedMessage) {
  jsCtx* js_raw = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js_raw, connection_.get(), nullptr), NATS_OK);
  const NatsPtr<jsCtx> js(js_raw);

  const char* subjects[] = {"events.>"};
  jsStreamConfig config;
  ASSERT_EQ(jsStreamConfig_Init(&config), NATS_OK);
  config.Name = "EVENTS";
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;

  jsStreamInfo* info_raw = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  const natsStatus added = js_AddStream(&info_raw, js.get(), &config, nullptr, &js_error);
  const NatsPtr<jsStreamInfo> created(info_raw);
  ASSERT_EQ(added, NATS_OK) << "add stream: " << status_text(added) << ", JetStream error "
                            << js_error;

  const std::string payload = R"({"order":42})";
  jsPubAck* ack_raw = nullptr;
  const natsStatus published =
      js_Publish(&ack_raw, js.get(), "events.order.created", payload.data(),
                 static_cast<int>(payload.size()), nullptr, &js_error);
  const NatsPtr<jsPubAck> ack(ack_raw);
  ASSERT_EQ(published, NATS_OK) << "publish: " << status_text(published) << ", JetStream error "
                                << js_error;
  ASSERT_NE(ack, nullptr);
  EXPECT_STREQ(ack->Stream, "EVENTS");
  EXPECT_EQ(ack->Sequence, 1u);
  EXPECT_FALSE(ack->Duplicate);

  info_raw = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&info_raw, js.get(), "EVENTS", nullptr, &js_error), NATS_OK);
  const NatsPtr<jsStreamInfo> info(info_raw);
  EXPECT_EQ(info->State.Msgs, 1u);
  EXPECT_EQ(info->State.Bytes > 0, true);
}

}  // namespace
}  // namespace keel::testing
