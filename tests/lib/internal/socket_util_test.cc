// Tests for lib/internal/socket_util: listeners on loopback port 0.
#include "lib/internal/socket_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/lib/internal/ipv6_loopback.h"

namespace baton::internal {
namespace {

TEST(CreateListenerTest, Ipv4LoopbackPortZero) {
  absl::StatusOr<ScopedFd> fd = CreateListener("127.0.0.1", 0, 16, false);
  ASSERT_TRUE(fd.ok()) << fd.status();
  absl::StatusOr<int> port = LocalPort(fd->get());
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_EQ(LocalAddressString(fd->get()), absl::StrCat("127.0.0.1:", *port));
  // Non-blocking, close-on-exec, TCP_NODELAY for accepted sockets to inherit.
  EXPECT_NE(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  ASSERT_EQ(::getsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len),
            0);
  EXPECT_EQ(nodelay, 1);
}

TEST(CreateListenerTest, Ipv6LoopbackIsBracketed) {
  absl::StatusOr<bool> ipv6 = testing::HasIpv6Loopback();
  ASSERT_TRUE(ipv6.ok()) << ipv6.status();
  if (!*ipv6) GTEST_SKIP() << "no IPv6 loopback on this host";
  absl::StatusOr<ScopedFd> fd = CreateListener("::1", 0, 16, false);
  ASSERT_TRUE(fd.ok()) << fd.status();
  absl::StatusOr<int> port = LocalPort(fd->get());
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(LocalAddressString(fd->get()), absl::StrCat("[::1]:", *port));
}

TEST(CreateListenerTest, BadAddressIsInvalidArgument) {
  absl::StatusOr<ScopedFd> fd = CreateListener("localhost", 0, 16, false);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CreateListenerTest, PortInUseNamesTheAddress) {
  absl::StatusOr<ScopedFd> first = CreateListener("127.0.0.1", 0, 16, false);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = *LocalPort(first->get());
  absl::StatusOr<ScopedFd> second =
      CreateListener("127.0.0.1", port, 16, false);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(
      second.status().message().find(absl::StrCat("bind 127.0.0.1:", port)),
      absl::string_view::npos)
      << second.status();
}

TEST(LocalPortTest, NotASocketIsAnError) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_FALSE(LocalPort(fds[0]).ok());
  EXPECT_EQ(LocalAddressString(fds[0]), "?");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(MakeNonBlockingCloexecTest, SetsBothFlags) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  ASSERT_TRUE(MakeNonBlockingCloexec(fd).ok());
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  ::close(fd);
}

TEST(MakeNonBlockingCloexecTest, BadDescriptorIsAnError) {
  EXPECT_FALSE(MakeNonBlockingCloexec(-1).ok());
}

}  // namespace
}  // namespace baton::internal
