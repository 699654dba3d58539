#include "keel/http/host_port.h"

#include <gtest/gtest.h>

namespace keel::http {
namespace {

TEST(HostPortTest, ReadsNamesAddressesAndBracketedIpv6) {
  const auto a = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  const auto b = parse_host_port("[::1]:6379");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 6379);
  const auto c = parse_host_port("localhost:0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, 0) << "0: any free port";
  EXPECT_EQ(parse_host_port("h:65535")->port, 65535);
}

TEST(HostPortTest, RefusesLooseInput) {
  for (const char* bad : {"", ":", ":80", "host", "host:", "host:80abc", "host:+80", "host:-1",
                          "host:65536", "host:99999999999", "host: 80", "host:80 ", " host:80",
                          "ho st:80", "::1:80", "[::1:80", "[]:80", "[::1]x:80", "a/b:80",
                          "host:0x50", "host:1e3"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << '"' << bad << '"';
  }
}

}  // namespace
}  // namespace keel::http
