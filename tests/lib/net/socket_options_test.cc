// Tests for lib/net/socket_options: TCP_NODELAY on real loopback sockets.
#include "lib/net/socket_options.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace baton::net {
namespace {

int NoDelay(int fd) {
  int value = -1;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) != 0) return -1;
  return value;
}

// A connected pair on 127.0.0.1: a listener bound to port 0, a client
// connected to it and the accepted end.
class LoopbackPair : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener_, 1), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    client_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(client_, 0);
    ASSERT_EQ(
        ::connect(client_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
        0);
    accepted_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(accepted_, 0);
  }
  void TearDown() override {
    for (int fd : {accepted_, client_, listener_}) {
      if (fd >= 0) ::close(fd);
    }
  }

  int listener_ = -1;
  int client_ = -1;
  int accepted_ = -1;
};

TEST_F(LoopbackPair, SetNoDelayTurnsNagleOff) {
  ASSERT_EQ(NoDelay(client_), 0);  // the kernel's default
  SetNoDelay(client_);
  EXPECT_EQ(NoDelay(client_), 1);
  SetNoDelay(client_);  // idempotent
  EXPECT_EQ(NoDelay(client_), 1);
  EXPECT_EQ(NoDelay(accepted_), 0);  // per socket
  SetNoDelay(accepted_);
  EXPECT_EQ(NoDelay(accepted_), 1);
}

TEST_F(LoopbackPair, AcceptedSocketsInheritItFromTheListener) {
  // What lib/internal's CreateListener relies on to save a setsockopt per
  // connection.
  SetNoDelay(listener_);
  const int second = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(second, 0);
  sockaddr_in addr = {};
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len),
            0);
  ASSERT_EQ(::connect(second, reinterpret_cast<sockaddr*>(&addr), len), 0);
  const int accepted = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(NoDelay(accepted), 1);
  ::close(accepted);
  ::close(second);
}

TEST(SetNoDelayTest, IgnoresDescriptorsThatAreNotTcp) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  SetNoDelay(fds[0]);  // ENOTSOCK: ignored, no crash
  SetNoDelay(-1);      // EBADF: ignored
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace baton::net
