// Tests for lib/net/endpoint: "HOST:PORT" and "unix:/path" text.
#include "lib/net/endpoint.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::net {
namespace {

TEST(ParseEndpointTest, HostAndPort) {
  absl::StatusOr<Endpoint> e = ParseEndpoint("127.0.0.1:8080");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->is_unix());
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->ToString(), "127.0.0.1:8080");
}

TEST(ParseEndpointTest, BracketedIpv6) {
  absl::StatusOr<Endpoint> e = ParseEndpoint("[::1]:443");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 443);
  EXPECT_EQ(e->ToString(), "[::1]:443");
  EXPECT_FALSE(ParseEndpoint("::1:443").ok());
  EXPECT_FALSE(ParseEndpoint("[127.0.0.1]:443").ok());
}

TEST(ParseEndpointTest, UnixPathAndAbstractName) {
  absl::StatusOr<Endpoint> e = ParseEndpoint("unix:/run/echo.sock");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->is_unix());
  EXPECT_EQ(e->unix_path, "/run/echo.sock");
  EXPECT_TRUE(e->host.empty());
  EXPECT_EQ(e->port, 0);
  EXPECT_EQ(e->ToString(), "unix:/run/echo.sock");

  e = ParseEndpoint("unix:@echo");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->unix_path, "@echo");
  EXPECT_EQ(e->ToString(), "unix:@echo");
}

TEST(ParseEndpointTest, RefusesWithTheTextInTheMessage) {
  for (const char* bad :
       {"", "127.0.0.1", ":80", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:http", "unix:", "unix:@", "[]:80"}) {
    absl::StatusOr<Endpoint> e = ParseEndpoint(bad);
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(e.status().message().find(std::string("'") + bad + "'"),
              std::string::npos)
        << e.status();
  }
  absl::StatusOr<Endpoint> long_path =
      ParseEndpoint("unix:/" + std::string(200, 'x'));
  EXPECT_FALSE(long_path.ok());
}

TEST(ParseListenAddressTest, UnixOrHost) {
  absl::StatusOr<Endpoint> e = ParseListenAddress("unix:/tmp/s");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->unix_path, "/tmp/s");
  e = ParseListenAddress("0.0.0.0");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->is_unix());
  EXPECT_EQ(e->host, "0.0.0.0");
  EXPECT_FALSE(ParseListenAddress("unix:").ok());
}

TEST(IsUnixEndpointTest, Prefix) {
  EXPECT_TRUE(IsUnixEndpoint("unix:/x"));
  EXPECT_FALSE(IsUnixEndpoint("unix"));
  EXPECT_FALSE(IsUnixEndpoint("127.0.0.1:1"));
}

}  // namespace
}  // namespace baton::net
