// A real redis-server answers hiredis: the ground the Redis adapters stand on.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/redis_server.h"

namespace keel::testing {
namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class RedisSmokeTest : public ::testing::Test {
 protected:
  // One server for the suite; a failed start fails every test with the reason (never a skip).
  static void SetUpTestSuite() {
    try {
      server_ = RedisServer::start();
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    if (server_ == nullptr) FAIL() << "could not start redis-server: " << start_error_;
  }

  static Context connect() {
    Context context(redisConnectWithTimeout(server_->host().c_str(), server_->port(), {5, 0}));
    if (context == nullptr || context->err != 0) {
      ADD_FAILURE() << "cannot connect to redis on port " << server_->port() << ": "
                    << (context ? context->errstr : "out of memory");
      return nullptr;
    }
    return context;
  }

  // The reply, or nullptr when the connection failed (context->errstr says why).
  template <typename... Args>
  static Reply command(redisContext* context, const char* format, Args... args) {
    return Reply(static_cast<redisReply*>(redisCommand(context, format, args...)));
  }

  static inline std::unique_ptr<RedisServer> server_;
  static inline std::string start_error_;
};

TEST_F(RedisSmokeTest, SetThenGetRoundTrips) {
  const Context context = connect();
  ASSERT_NE(context, nullptr);

  const Reply set = command(context.get(), "SET %s %s", "greeting", "hello, keel");
  ASSERT_NE(set, nullptr) << context->errstr;
  ASSERT_EQ(set->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(std::string(set->str, set->len), "OK");

  const Reply get = command(context.get(), "GET %s", "greeting");
  ASSERT_NE(get, nullptr) << context->errstr;
  ASSERT_EQ(get->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(get->str, get->len), "hello, keel");
}

TEST_F(RedisSmokeTest, IncrIsAtomicAcrossConnections) {
  constexpr int kThreads = 4;
  constexpr int kIncrementsPerThread = 1000;
  {
    const Context context = connect();
    ASSERT_NE(context, nullptr);
    ASSERT_NE(command(context.get(), "DEL %s", "counter"), nullptr);
  }

  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&errors, t] {
      const Context context = connect();
      if (context == nullptr) {
        errors[static_cast<std::size_t>(t)] = "no connection";
        return;
      }
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        const Reply reply = command(context.get(), "INCR %s", "counter");
        if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
          errors[static_cast<std::size_t>(t)] =
              reply ? "INCR did not return an integer" : std::string(context->errstr);
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[static_cast<std::size_t>(t)], "") << "thread " << t;
  }

  const Context context = connect();
  ASSERT_NE(context, nullptr);
  const Reply total = command(context.get(), "GET %s", "counter");
  ASSERT_NE(total, nullptr) << context->errstr;
  ASSERT_EQ(total->type, REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(total->str, total->len), std::to_string(kThreads * kIncrementsPerThread));
}

}  // namespace
}  // namespace keel::testing
