// Tests for accepting connections (lib/internal/acceptor.cc): Listen's
// argument checks, max_connections, deferred accept, and Adopt, through the
// public Reactor API on loopback with real sockets.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "tests/lib/reactor_fixture.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoFactory;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::End;
using ::baton::testing::EndName;
using ::baton::testing::EofOrReset;
using ::baton::testing::Eventually;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;
using ::baton::testing::WaitForEnd;

TEST(ReactorTest, ListenRejectsBadAddress) {
  auto r = Reactor::Create(Threads(1));
  ASSERT_TRUE(r.ok());
  ListenOptions l;
  l.address = "not-an-address";
  EXPECT_EQ((*r)->Listen(l, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  l.address = "127.0.0.1";
  l.port = 70000;
  EXPECT_FALSE((*r)->Listen(l, EchoFactory()).ok());
  l.port = 0;
  l.defer_accept_seconds = -1;
  EXPECT_EQ((*r)->Listen(l, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReactorTest, MaxConnectionsRefusesTheRest) {
  ReactorOptions o = Threads(1);
  o.max_connections = 2;
  Server s = StartServer(o, EchoFactory());
  const int a = ConnectLoopback(s.port);
  const int b = ConnectLoopback(s.port);
  ASSERT_TRUE(EchoRoundTrip(a, "a").ok());
  ASSERT_TRUE(EchoRoundTrip(b, "b").ok());
  const int c = ConnectLoopback(s.port);
  ASSERT_GE(c, 0);  // the kernel completes the handshake...
  const End end = WaitForEnd(c);  // ...then the reactor closes it at once
  EXPECT_TRUE(EofOrReset(end)) << EndName(end);
  EXPECT_TRUE(Eventually([&] { return s.reactor->Counters().rejected == 1; }));
  EXPECT_TRUE(EchoRoundTrip(a, "still here").ok());
  ::close(a);
  ::close(b);
  ::close(c);
}

class EchoOnceAndClose : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    conn.Close();
  }
};

// Counts the epoll events it takes to serve `n` sequential one-request
// connections; checks every reply.
uint64_t EventsForSequentialRequests(int defer_accept_seconds, int n) {
  auto reactor = Reactor::Create(Threads(1));
  EXPECT_TRUE(reactor.ok());
  ListenOptions listen;
  listen.defer_accept_seconds = defer_accept_seconds;
  auto port = (*reactor)->Listen(
      listen, [] { return std::make_unique<EchoOnceAndClose>(); });
  EXPECT_TRUE(port.ok()) << port.status();
  EXPECT_TRUE((*reactor)->Start().ok());
  for (int i = 0; i < n; ++i) {
    const int fd = ConnectLoopback(*port);
    EXPECT_GE(fd, 0);
    const std::string request = absl::StrCat("request ", i);
    EXPECT_TRUE(SendAll(fd, request).ok());
    absl::StatusOr<std::string> got = ReadToEof(fd);
    EXPECT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got.value_or(""), request);
    ::close(fd);
  }
  return (*reactor)->Counters().events;
}

// With a deferred accept the request is read at accept time: one listener
// event per connection instead of a listener event plus a read event.
TEST(ReactorTest, DeferredAcceptServesTheRequestWithoutAnotherEvent) {
  constexpr int kConnections = 20;
  EXPECT_GE(EventsForSequentialRequests(0, kConnections), 2 * kConnections);
  EXPECT_LE(EventsForSequentialRequests(1, kConnections), kConnections);
}

TEST(ReactorTest, AdoptServesAConnectedSocket) {
  Server s = StartServer(Threads(2), EchoFactory());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  absl::StatusOr<ConnectionId> id = s.reactor->Adopt(sv[0], EchoFactory());
  ASSERT_TRUE(id.ok()) << id.status();
  timeval tv = {10, 0};
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_TRUE(EchoRoundTrip(sv[1], Pattern(300000, 8)).ok());
  ::close(sv[1]);
}

}  // namespace
}  // namespace baton
