// Tests for lib/net/address: literal parsing (IPv4, IPv6, bad input) and
// "host:port" text.
#include "lib/net/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace baton::net {
namespace {

TEST(ParseSocketAddressTest, Ipv4LiteralAndPort) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = ParseSocketAddress("127.0.0.1", 8080, &addr);
  ASSERT_TRUE(len.ok()) << len.status();
  EXPECT_EQ(*len, sizeof(sockaddr_in));
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
  EXPECT_EQ(v4->sin_family, AF_INET);
  EXPECT_EQ(ntohs(v4->sin_port), 8080);
  EXPECT_EQ(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
}

TEST(ParseSocketAddressTest, Ipv6Literals) {
  for (const char* text :
       {"::1", "::", "fe80::1", "2001:db8::a:b:c", "::ffff:127.0.0.1"}) {
    sockaddr_storage addr;
    absl::StatusOr<socklen_t> len = ParseSocketAddress(text, 443, &addr);
    ASSERT_TRUE(len.ok()) << text << ": " << len.status();
    EXPECT_EQ(*len, sizeof(sockaddr_in6)) << text;
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    EXPECT_EQ(v6->sin6_family, AF_INET6) << text;
    EXPECT_EQ(ntohs(v6->sin6_port), 443) << text;
    in6_addr expected;
    ASSERT_EQ(inet_pton(AF_INET6, text, &expected), 1);
    EXPECT_EQ(std::memcmp(&v6->sin6_addr, &expected, sizeof(expected)), 0)
        << text;
  }
}

TEST(ParseSocketAddressTest, PortBounds) {
  sockaddr_storage addr;
  EXPECT_TRUE(ParseSocketAddress("0.0.0.0", 0, &addr).ok());
  EXPECT_TRUE(ParseSocketAddress("0.0.0.0", 65535, &addr).ok());
  for (int port : {-1, 65536, 1 << 20}) {
    absl::StatusOr<socklen_t> len =
        ParseSocketAddress("127.0.0.1", port, &addr);
    EXPECT_EQ(len.status().code(), absl::StatusCode::kInvalidArgument) << port;
  }
}

TEST(ParseSocketAddressTest, RejectsAnythingButALiteral) {
  for (const char* text :
       {"", "localhost", "example.com", "127.0.0.1:80", "[::1]", "::1%lo",
        "1.2.3", "256.0.0.1", "1.2.3.4.5", " 127.0.0.1", "127.0.0.1 ", "::1::2",
        "gggg::1", "127.0.0.1\n"}) {
    sockaddr_storage addr;
    absl::StatusOr<socklen_t> len = ParseSocketAddress(text, 80, &addr);
    EXPECT_EQ(len.status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << text << "'";
    EXPECT_FALSE(IsAddressLiteral(text)) << "'" << text << "'";
  }
}

TEST(ParseSocketAddressTest, EmbeddedNulIsNotALiteral) {
  sockaddr_storage addr;
  const std::string text("127.0.0.1\0junk", 14);
  EXPECT_FALSE(ParseSocketAddress(text, 80, &addr).ok());
}

TEST(IsAddressLiteralTest, AcceptsBothFamilies) {
  EXPECT_TRUE(IsAddressLiteral("127.0.0.1"));
  EXPECT_TRUE(IsAddressLiteral("0.0.0.0"));
  EXPECT_TRUE(IsAddressLiteral("::1"));
  EXPECT_TRUE(IsAddressLiteral("::"));
}

TEST(JoinHostPortTest, BracketsIpv6Only) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 12345), "127.0.0.1:12345");
  EXPECT_EQ(JoinHostPort("::1", 80), "[::1]:80");
  EXPECT_EQ(JoinHostPort("fe80::1", 0), "[fe80::1]:0");
  EXPECT_EQ(JoinHostPort("localhost", 8081), "localhost:8081");
}

TEST(IsHostNameTest, AcceptsHostNames) {
  for (const char* name : {"localhost", "db.internal", "a", "x-1.example.",
                           "_srv.example.com", "1.2.3.example", "4chan.org"}) {
    EXPECT_TRUE(IsHostName(name)) << "'" << name << "'";
  }
}

TEST(IsHostNameTest, RejectsWhatIsNoHostName) {
  const std::string long_label(64, 'a');
  for (const std::string& name :
       {std::string(), std::string("."), std::string("1.2.3"),
        std::string("256.0.0.1"), std::string("::1"), std::string("[::1]"),
        std::string("a..b"), std::string("-a"), std::string("a-"),
        std::string("a-.b"), std::string("a b"), std::string("host:80"),
        std::string("a\0b", 3), long_label + ".example"}) {
    EXPECT_FALSE(IsHostName(name)) << "'" << name << "'";
  }
}

TEST(SocketAddressStringTest, FormatsWhatParseSocketAddressParsed) {
  sockaddr_storage addr;
  ASSERT_TRUE(ParseSocketAddress("10.1.2.3", 7, &addr).ok());
  EXPECT_EQ(SocketAddressString(addr), "10.1.2.3:7");
  ASSERT_TRUE(ParseSocketAddress("2001:db8::1", 65535, &addr).ok());
  EXPECT_EQ(SocketAddressString(addr), "[2001:db8::1]:65535");
}

TEST(SocketAddressStringTest, OtherFamiliesAreAQuestionMark) {
  sockaddr_storage addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.ss_family = AF_APPLETALK;
  EXPECT_EQ(SocketAddressString(addr), "?");
}

TEST(ParseUnixAddressTest, FilePathIsNulTerminated) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = ParseUnixAddress("/tmp/echo.sock", &addr);
  ASSERT_TRUE(len.ok()) << len.status();
  const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
  EXPECT_EQ(un->sun_family, AF_UNIX);
  EXPECT_STREQ(un->sun_path, "/tmp/echo.sock");
  EXPECT_EQ(*len, offsetof(sockaddr_un, sun_path) + 15);
  EXPECT_EQ(SocketAddressString(addr, *len), "unix:/tmp/echo.sock");
  EXPECT_EQ(SocketAddressString(addr), "unix:/tmp/echo.sock");
}

TEST(ParseUnixAddressTest, AtSignIsTheAbstractNamespace) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = ParseUnixAddress("@baton-echo", &addr);
  ASSERT_TRUE(len.ok()) << len.status();
  const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
  EXPECT_EQ(un->sun_path[0], '\0');
  EXPECT_EQ(std::string(un->sun_path + 1, 10), "baton-echo");
  // Length-delimited: no terminating NUL counted.
  EXPECT_EQ(*len, offsetof(sockaddr_un, sun_path) + 11);
  EXPECT_EQ(SocketAddressString(addr, *len), "unix:@baton-echo");
  EXPECT_EQ(SocketAddressString(addr), "unix:@baton-echo");
}

TEST(ParseUnixAddressTest, RefusesEmptyNulAndTooLong) {
  sockaddr_storage addr;
  EXPECT_EQ(ParseUnixAddress("", &addr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUnixAddress("@", &addr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseUnixAddress(absl::string_view("/a\0b", 4), &addr).status().code(),
      absl::StatusCode::kInvalidArgument);
  const std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'p');
  EXPECT_TRUE(ParseUnixAddress(longest, &addr).ok());
  absl::StatusOr<socklen_t> too_long = ParseUnixAddress(longest + "p", &addr);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("longer than 107"),
            std::string::npos)
      << too_long.status();
  EXPECT_TRUE(ParseUnixAddress("@" + longest, &addr).ok());
  EXPECT_FALSE(ParseUnixAddress("@" + longest + "p", &addr).ok());
}

TEST(SocketAddressStringTest, UnnamedUnixPeer) {
  // What accept(2) reports for a client that did not bind.
  sockaddr_storage addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.ss_family = AF_UNIX;
  EXPECT_EQ(SocketAddressString(addr, sizeof(sa_family_t)), "unix:(unnamed)");
}

TEST(SocketAddressStringTest, BoundAbstractSocketNamesItsName) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_storage addr;
  const std::string name = absl::StrCat("@baton-address-test-", ::getpid());
  absl::StatusOr<socklen_t> len = ParseUnixAddress(name, &addr);
  ASSERT_TRUE(len.ok());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), *len), 0);
  sockaddr_storage got;
  socklen_t got_len = sizeof(got);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len), 0);
  EXPECT_EQ(SocketAddressString(got, got_len), "unix:" + name);
  ::close(fd);
}

}  // namespace
}  // namespace baton::net
