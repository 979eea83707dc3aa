// Tests for lib/net/lookup: literals pass through, names are answered by a
// DNS server on 127.0.0.1 inside the test (first address, IPv6 too), a
// name that does not exist is NOT_FOUND, an unanswered one times out, and
// localhost comes from /etc/hosts.
#include "lib/net/lookup.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/util/test_dns_server.h"

namespace baton::net {
namespace {

using ::baton::testing::TestDnsServer;

TEST(LookupHostBlockingTest, LiteralsPassThroughWithoutALookup) {
  TestDnsServer dns;
  for (const char* literal : {"127.0.0.1", "::1", "0.0.0.0"}) {
    absl::StatusOr<std::string> r = LookupHostBlocking(literal, dns.servers());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, literal);
  }
}

TEST(LookupHostBlockingTest, TakesTheFirstAddressOfAName) {
  TestDnsServer dns;
  dns.Add("one.test", {"127.0.0.3", "127.0.0.1"});
  dns.Add("six.test", {"::1"});
  absl::StatusOr<std::string> r = LookupHostBlocking("one.test", dns.servers());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "127.0.0.3");
  r = LookupHostBlocking("six.test", dns.servers());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "::1");
  EXPECT_GE(dns.queries("one.test"), 1);
}

TEST(LookupHostBlockingTest, ANameThatDoesNotExistIsNotFound) {
  TestDnsServer dns;
  absl::StatusOr<std::string> r =
      LookupHostBlocking("nosuch.test", dns.servers());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_NE(r.status().message().find("resolve nosuch.test"), std::string::npos)
      << r.status();
}

TEST(LookupHostBlockingTest, AnUnansweredLookupTimesOut) {
  TestDnsServer dns;
  dns.AddSilent("silent.test");
  absl::StatusOr<std::string> r =
      LookupHostBlocking("silent.test", dns.servers(), absl::Milliseconds(50));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_GE(dns.queries("silent.test"), 1);
}

TEST(LookupHostBlockingTest, LocalhostFromTheHostsFile) {
  TestDnsServer dns;  // asked nothing: /etc/hosts answers first
  absl::StatusOr<std::string> r =
      LookupHostBlocking("localhost", dns.servers());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r == "127.0.0.1" || *r == "::1") << *r;
  EXPECT_EQ(dns.queries("localhost"), 0);
}

TEST(LookupHostBlockingTest, RefusesWhatIsNeitherLiteralNorName) {
  for (const char* bad : {"", "1.2.3", "bad name", "[::1]"}) {
    EXPECT_EQ(LookupHostBlocking(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace baton::net
