// Many clients at once on a two-thread server, while the server is stopped at the end: every
// request gets its own answer, counts add up, and stop() returns.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <string>
#include <thread>
#include <vector>

#include "keel/http/client.h"
#include "keel/http/server.h"

namespace keel::http {
namespace {

TEST(HttpConcurrency, ManyClientsGetTheirOwnAnswers) {
  MetricsRegistry metrics;
  std::atomic<int> handled{0};
  Router router;
  router.add(Method::post, "/echo/{id}", [&](Request& r) {
    ++handled;
    return json_response(Status::ok, {{"id", r.param("id")}, {"body", r.body()}});
  });
  Server server(std::move(router), {.threads = 2, .metrics = &metrics});
  server.start();
  constexpr int kClients = 8;
  constexpr int kRequests = 50;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Client client("127.0.0.1", server.port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string id = fmt::format("{}-{}", c, i);
        const Response r = client.request(Method::post, fmt::format("/echo/{}", id), id);
        const auto body = boost::json::parse(r.body());
        if (body.at("id").as_string() != id || body.at("body").as_string() != id) ++mismatches;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(handled.load(), kClients * kRequests);
  EXPECT_EQ(server.requests(), static_cast<std::uint64_t>(kClients * kRequests));
  server.stop();
  EXPECT_EQ(server.connections(), 0u);
}

}  // namespace
}  // namespace keel::http
