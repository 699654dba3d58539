// The SSRF guard's address classifier, table-driven over IANA's special-purpose registries, and
// the guard's decisions for literals, names and the allowed list.
#include "case_studies/notification_system/channels/address_guard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace keel::notifier {
namespace {

using ::testing::HasSubstr;

struct Case {
  const char* address;
  const char* reason;  // a word of the expected reason; nullptr = public
};

class ClassifierTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClassifierTest, ClassifiesAddress) {
  const Case& c = GetParam();
  const auto reason = non_public_reason(c.address);
  if (c.reason == nullptr) {
    EXPECT_FALSE(reason.has_value()) << c.address << " should be public, got: " << *reason;
  } else {
    ASSERT_TRUE(reason.has_value()) << c.address << " should be refused (" << c.reason << ")";
    EXPECT_THAT(*reason, HasSubstr(c.reason)) << c.address;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ipv4, ClassifierTest,
    ::testing::Values(Case{"0.0.0.0", "this network"}, Case{"0.1.2.3", "this network"},
                      Case{"10.0.0.1", "RFC 1918"}, Case{"10.255.255.255", "RFC 1918"},
                      Case{"9.255.255.255", nullptr}, Case{"11.0.0.0", nullptr},
                      Case{"100.63.255.255", nullptr}, Case{"100.64.0.0", "CGNAT"},
                      Case{"100.127.255.255", "CGNAT"}, Case{"100.128.0.0", nullptr},
                      Case{"127.0.0.1", "loopback"}, Case{"127.255.255.254", "loopback"},
                      Case{"169.254.169.254", "link-local"}, Case{"169.253.255.255", nullptr},
                      Case{"172.15.255.255", nullptr}, Case{"172.16.0.1", "RFC 1918"},
                      Case{"172.31.255.255", "RFC 1918"}, Case{"172.32.0.0", nullptr},
                      Case{"192.0.0.8", "IETF"}, Case{"192.0.2.1", "TEST-NET-1"},
                      Case{"192.88.99.1", "6to4 relay"}, Case{"192.167.255.255", nullptr},
                      Case{"192.168.1.1", "RFC 1918"}, Case{"192.169.0.0", nullptr},
                      Case{"198.17.255.255", nullptr}, Case{"198.18.0.1", "benchmarking"},
                      Case{"198.19.255.255", "benchmarking"}, Case{"198.20.0.0", nullptr},
                      Case{"198.51.100.7", "TEST-NET-2"}, Case{"203.0.113.9", "TEST-NET-3"},
                      Case{"224.0.0.1", "multicast"}, Case{"239.255.255.250", "multicast"},
                      Case{"240.0.0.1", "reserved"}, Case{"255.255.255.255", "broadcast"},
                      Case{"8.8.8.8", nullptr}, Case{"1.1.1.1", nullptr},
                      Case{"93.184.216.34", nullptr}, Case{"223.255.255.255", nullptr}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6, ClassifierTest,
    ::testing::Values(
        Case{"::", "unspecified"}, Case{"::1", "loopback"}, Case{"0:0:0:0:0:0:0:1", "loopback"},
        Case{"::ffff:127.0.0.1", "loopback in IPv4-mapped"},
        Case{"::ffff:7f00:1", "loopback in IPv4-mapped"}, Case{"::ffff:10.1.2.3", "RFC 1918"},
        Case{"::ffff:169.254.169.254", "link-local"}, Case{"::ffff:100.64.1.1", "CGNAT"},
        Case{"::ffff:0.0.0.0", "this network"},
        Case{"::ffff:8.8.8.8", nullptr},  // reaching it is reaching 8.8.8.8
        Case{"::127.0.0.1", "IPv4-compatible"}, Case{"::8.8.8.8", "IPv4-compatible"},
        Case{"64:ff9b::7f00:1", "NAT64"}, Case{"64:ff9b::10.0.0.1", "NAT64"},
        Case{"64:ff9b::8.8.8.8", nullptr}, Case{"64:ff9b:1::1", "local-use NAT64"},
        Case{"100::1", "discard"}, Case{"fc00::1", "unique local"},
        Case{"fd12:3456:789a::1", "unique local"}, Case{"fe80::1", "link-local"},
        Case{"febf:ffff::1", "link-local"}, Case{"fec0::1", "site-local"},
        Case{"ff02::1", "multicast"}, Case{"ff0e::101", "multicast"},
        Case{"2001:db8::1", "documentation"}, Case{"2001::1", "Teredo"}, Case{"2001:10::1", "IETF"},
        Case{"2002:7f00:1::", "loopback in 6to4"}, Case{"2002:c0a8:101::1", "RFC 1918"},
        Case{"2002:808:808::1", nullptr}, Case{"3fff::1", "documentation"},
        Case{"4000::1", "not global unicast"}, Case{"1::1", "not global unicast"},
        Case{"2606:4700:4700::1111", nullptr}, Case{"2a00:1450:4007:80e::200e", nullptr},
        Case{"2001:4860:4860::8888", nullptr}));

TEST(ClassifierTest, RejectsTextThatIsNotAnAddress) {
  for (const char* text : {"", "localhost", "127.0.0.1.", "[::1]", "1.2.3.4:80", "::1%lo"}) {
    EXPECT_THROW(non_public_reason(text), std::invalid_argument) << text;
  }
}

TEST(CanonicalIpTest, NormalisesSpellings) {
  EXPECT_EQ(canonical_ip("0:0::1"), "::1");
  EXPECT_EQ(canonical_ip("FE80:0:0::0:1"), "fe80::1");
  EXPECT_EQ(canonical_ip("::ffff:7f00:1"), "::ffff:127.0.0.1");
  EXPECT_EQ(canonical_ip("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(canonical_ip("example.com"), std::nullopt);
}

TEST(AddressGuardTest, RefusesPrivateLiteralsWithTheReason) {
  const AddressGuard guard;
  for (const char* host : {"127.0.0.1", "[::1]", "::1", "169.254.169.254", "10.1.2.3",
                           "[::ffff:127.0.0.1]", "0.0.0.0", "100.100.100.100"}) {
    const GuardedTarget t = guard.resolve(host, 80);
    EXPECT_TRUE(t.refused) << host;
    EXPECT_THAT(t.error, HasSubstr("non-public")) << host;
    EXPECT_TRUE(t.addresses.empty()) << host;
  }
}

TEST(AddressGuardTest, PublicLiteralsPassUnresolved) {
  const AddressGuard guard;
  const GuardedTarget t = guard.resolve("[2606:4700:4700::1111]", 443);
  EXPECT_TRUE(t.error.empty()) << t.error;
  EXPECT_EQ(t.addresses, std::vector<std::string>{"2606:4700:4700::1111"});
  EXPECT_EQ(t.host, "2606:4700:4700::1111");
}

TEST(AddressGuardTest, AllowedAddressesAndNamesPass) {
  const AddressGuard guard({"127.0.0.1", "LocalHost", "[::1]"});
  EXPECT_TRUE(guard.resolve("127.0.0.1", 80).error.empty());
  EXPECT_TRUE(guard.resolve("::1", 80).error.empty()) << "allowed in brackets, asked bare";
  EXPECT_TRUE(guard.allows("localhost", "127.0.0.1"));
  EXPECT_TRUE(guard.allows("anything", "127.0.0.1"))
      << "an allowed address is allowed for any name";
  EXPECT_TRUE(guard.allows("localhost", "10.0.0.1")) << "an allowed name: whatever it resolves to";
  EXPECT_FALSE(guard.allows("example.org", "10.0.0.1")) << "neither the name nor the address";
  EXPECT_TRUE(guard.allows("example.org", "8.8.8.8")) << "public";
}

TEST(AddressGuardTest, AllowedNameCoversWhatItResolvesTo) {
  const AddressGuard guard({"localhost"});
  const GuardedTarget t = guard.resolve("localhost", 8080);
  ASSERT_TRUE(t.error.empty()) << t.error;
  EXPECT_FALSE(t.addresses.empty());
  for (const std::string& a : t.addresses) EXPECT_TRUE(non_public_reason(a).has_value()) << a;
}

TEST(AddressGuardTest, NameResolvingToLoopbackIsRefused) {
  const AddressGuard guard({"127.0.0.2"});  // not what localhost resolves to
  const GuardedTarget t = guard.resolve("localhost", 80);
  EXPECT_TRUE(t.refused);
  EXPECT_THAT(t.error, HasSubstr("'localhost'"));
  EXPECT_THAT(t.error, HasSubstr("loopback"));
}

TEST(AddressGuardTest, UnresolvableNameIsALookupFailureNotARefusal) {
  const AddressGuard guard;
  const GuardedTarget t = guard.resolve("no-such-host.invalid", 80);  // RFC 6761: never resolves
  EXPECT_FALSE(t.error.empty());
  EXPECT_FALSE(t.refused);
  EXPECT_THAT(t.error, HasSubstr("cannot resolve"));
}

}  // namespace
}  // namespace keel::notifier
