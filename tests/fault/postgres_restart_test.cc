// keel/postgres across a PostgreSQL crash (SIGKILL to the postmaster and its backends) and a
// restart on the same port and data directory: while the server is down every statement fails
// with a connection-failure Error (never a crash), and once it is back the same objects work
// again without being rebuilt, with everything committed before the crash still there.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "keel/postgres/connection.h"
#include "keel/postgres/event_store.h"
#include "tests/support/postgres_server.h"

namespace keel::testing {
namespace {

class FaultPostgresRestartTest : public ::testing::Test {
 protected:
  std::unique_ptr<PostgresServer> server_ = PostgresServer::start();
};

// Regression: Connection::Impl::open() dropped the lost connection before opening a new one, so
// a reconnect that failed (the server still down) left a null pointer, and the next statement
// dereferenced it. keel-shortener --postgres died with SIGSEGV on the second request after a
// PostgreSQL crash (found by shortener_engine_restart_test).
TEST_F(FaultPostgresRestartTest, StatementsWhileTheServerIsDownFailCleanlyThenReconnect) {
  postgres::Connection connection(server_->connection_string());
  ASSERT_EQ(connection.execute("SELECT 41 + 1")[0].as_int64(0), 42);
  server_->stop(/*crash=*/true);
  for (int attempt = 0; attempt < 3; ++attempt) {
    try {
      connection.execute("SELECT 1");
      FAIL() << "a statement ran without a server";
    } catch (const postgres::Error& e) {
      EXPECT_TRUE(e.is_connection_failure()) << e.sqlstate() << ": " << e.what();
    }
  }
  EXPECT_FALSE(connection.is_open());
  ASSERT_NO_THROW(server_->start_again());
  EXPECT_EQ(connection.execute("SELECT 41 + 1")[0].as_int64(0), 42);
  EXPECT_TRUE(connection.is_open());
}

TEST_F(FaultPostgresRestartTest, EventStoreKeepsWhatWasCommittedAndAppendsAgainAfterTheRestart) {
  postgres::PostgresEventStore store(server_->connection_string());
  const cqrs::NewEvent event{.type = "Deposited", .data = R"({"amount":1})"};
  for (int i = 0; i < 50; ++i) {
    store.append(fmt::format("account-{}", i), cqrs::ExpectedVersion::no_stream(),
                 std::span(&event, 1));
  }
  server_->stop(/*crash=*/true);
  for (int attempt = 0; attempt < 3; ++attempt) {
    EXPECT_THROW(store.append("account-down", cqrs::ExpectedVersion::any(), std::span(&event, 1)),
                 BackendError);
  }
  ASSERT_NO_THROW(server_->start_again());
  EXPECT_NO_THROW(
      store.append("account-after", cqrs::ExpectedVersion::no_stream(), std::span(&event, 1)));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(store.read_stream(fmt::format("account-{}", i)).size(), 1u) << i;
  }
  EXPECT_TRUE(store.read_stream("account-down").empty()) << "a failed append wrote something";
  EXPECT_EQ(store.read_all().size(), 51u);
}

}  // namespace
}  // namespace keel::testing
