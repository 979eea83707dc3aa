// Tests for accepting connections (lib/internal/acceptor.cc): Listen's
// argument checks, max_connections, deferred accept, and Adopt, through the
// public Reactor API on loopback with real sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
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
  ASSERT_GE(c, 0);                // the kernel completes the handshake...
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

// True if `peer`'s other end is closed: a non-blocking read sees EOF at once.
// Checks the descriptor by what it is connected to, not by its number, which
// another thread may have reused.
bool OtherEndClosed(int peer) {
  char byte;
  return ::recv(peer, &byte, 1, MSG_DONTWAIT) == 0;
}

// Adopt after Stop + Wait: refused, and the descriptor handed over is closed
// before Adopt returns (it owns it on every path); nothing is left behind.
TEST(ReactorTest, AdoptAfterWaitFailsAndClosesTheFd) {
  Server s = StartServer(Threads(2), EchoFactory());
  s.reactor->Stop();
  s.reactor->Wait();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  absl::StatusOr<ConnectionId> id = s.reactor->Adopt(sv[0], EchoFactory());
  EXPECT_FALSE(id.ok());
  // No thread of this process opens descriptors now (the reactor's are
  // joined), so sv[0]'s number cannot have been reused yet.
  errno = 0;
  EXPECT_EQ(::fcntl(sv[0], F_GETFD), -1) << "the adopted fd is still open";
  EXPECT_EQ(errno, EBADF);
  EXPECT_TRUE(OtherEndClosed(sv[1]));
  EXPECT_EQ(s.reactor->connection_count(), 0u);
  ::close(sv[1]);
}

// Adopt from another thread while the reactor stops and Wait runs: the
// adoptions made before Stop are served and then closed by it, every later
// one is refused with its descriptor closed, and after Wait no connection
// is left. Each refused descriptor is checked as soon as Adopt returns.
TEST(ReactorTest, AdoptRacingStopAndWaitLeaksNothing) {
  Server s = StartServer(Threads(2), EchoFactory());
  constexpr int kBeforeStop = 10;
  constexpr int kAfterWait = 20;  // adoptions after Wait has returned
  constexpr int kMaxAdoptions = 2000;
  Notification started, stop_called;
  std::atomic<bool> wait_returned{false};
  std::vector<int> adopted_peers;  // peers of the adopted connections
  int refused = 0;
  int refused_open = 0;  // refused, but the descriptor was still open
  int socketpair_errors = 0;
  std::thread adopter([&] {
    int after_wait = 0;
    for (int i = 0; i < kMaxAdoptions && after_wait < kAfterWait; ++i) {
      if (i == kBeforeStop) {
        started.Notify();
        stop_called.WaitFor(std::chrono::seconds(10));
      }
      const bool waited = wait_returned.load();
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ++socketpair_errors;
        break;
      }
      if (s.reactor->Adopt(sv[0], EchoFactory()).ok()) {
        adopted_peers.push_back(sv[1]);
      } else {
        ++refused;
        if (!OtherEndClosed(sv[1])) ++refused_open;
        ::close(sv[1]);
      }
      if (waited) ++after_wait;
    }
    started.Notify();
  });
  const bool adopter_started = started.WaitFor(std::chrono::seconds(10));
  s.reactor->Stop();
  stop_called.Notify();
  s.reactor->Wait();
  wait_returned = true;
  adopter.join();

  EXPECT_TRUE(adopter_started);
  EXPECT_EQ(socketpair_errors, 0);
  EXPECT_EQ(adopted_peers.size(), static_cast<size_t>(kBeforeStop));
  EXPECT_GE(refused, kAfterWait);
  EXPECT_EQ(refused_open, 0) << "refused adoptions whose fd stayed open";
  EXPECT_EQ(s.reactor->connection_count(), 0u);
  for (int peer : adopted_peers) {
    EXPECT_TRUE(OtherEndClosed(peer)) << "an adopted connection outlived Wait";
    ::close(peer);
  }
}

}  // namespace
}  // namespace baton
