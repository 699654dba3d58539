// keel::redis::RateLimitStore against a private redis-server: decisions per second for each
// algorithm with 1 and 50 requests in flight, next to the same server's EVALSHA of `return 1`,
// so that the cost of the scripts themselves is visible. Server time (the production default),
// 10,000 keys in rotation, limits generous enough that most decisions write.
// Run: build/release/bench/keel_redis_ratelimit_benchmark
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "keel/ratelimit/limit.h"
#include "keel/redis/rate_limit_store.h"
#include "tests/support/redis_server.h"

namespace keel::redis {
namespace {

using ratelimit::Limit;
using std::chrono::seconds;

constexpr int kInFlight = 50;
constexpr int kKeys = 10'000;

testing::RedisServer& server() {
  static const auto instance = testing::RedisServer::start();
  return *instance;
}

// One store for every thread, as in a service: pool_size = the most requests in flight.
RateLimitStore& store() {
  static RateLimitStore instance([] {
    RateLimitStoreOptions options;
    options.connection.host = server().host();
    options.connection.port = server().port();
    options.connection.pool_size = kInFlight;
    return options;
  }());
  return instance;
}

void BM_Decision(benchmark::State& state, const Limit& limit) {
  RateLimitStore& shared = store();
  std::int64_t i = state.thread_index() * (kKeys / kInFlight);
  std::int64_t denied = 0;
  for (auto _ : state) {
    const auto decision = shared.try_acquire("user-" + std::to_string(i++ % kKeys), limit);
    denied += decision.allowed ? 0 : 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["denied"] = benchmark::Counter(static_cast<double>(denied));
  if (shared.metrics().errors != 0) state.SkipWithError("Redis failed during the run");
}

void BM_RawEvalsha(benchmark::State& state) {
  redisContext* context =
      redisConnectWithTimeout(server().host().c_str(), server().port(), timeval{5, 0});
  if (context == nullptr || context->err != 0) {
    state.SkipWithError("cannot connect");
    return;
  }
  auto* loaded = static_cast<redisReply*>(redisCommand(context, "SCRIPT LOAD %s", "return 1"));
  const std::string sha(loaded->str, loaded->len);
  freeReplyObject(loaded);
  for (auto _ : state) {
    auto* reply = static_cast<redisReply*>(redisCommand(context, "EVALSHA %s 0", sha.c_str()));
    if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
      state.SkipWithError("EVALSHA failed");
      break;
    }
    freeReplyObject(reply);
  }
  state.SetItemsProcessed(state.iterations());
  redisFree(context);
}

// 1 and kInFlight requests in flight, half a second each: the whole run stays under a minute.
void in_flight(benchmark::internal::Benchmark* b) {
  b->MinTime(0.5)->UseRealTime()->Threads(1)->Threads(kInFlight);
}

BENCHMARK(BM_RawEvalsha)->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, token_bucket, Limit::token_bucket(1e5, 1000))->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, gcra, Limit::gcra(1e5, 1000))->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, leaky_bucket, Limit::leaky_bucket(1e5, 1000))->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, fixed_window, Limit::fixed_window(1000, seconds(1)))
    ->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, sliding_window_log, Limit::sliding_window_log(1000, seconds(1)))
    ->Apply(in_flight);
BENCHMARK_CAPTURE(BM_Decision, sliding_window_counter,
                  Limit::sliding_window_counter(1000, seconds(1)))
    ->Apply(in_flight);

}  // namespace
}  // namespace keel::redis

BENCHMARK_MAIN();
