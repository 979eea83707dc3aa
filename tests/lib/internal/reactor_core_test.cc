// Tests for the reactor's lifecycle and counters (lib/internal/
// reactor_core.cc): Stop, Drain, Wait, Counters, through the public Reactor
// API on loopback with real sockets.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/connection.h"
#include "baton/reactor.h"
#include "tests/lib/reactor_fixture.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectErrno;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoFactory;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Eventually;
using ::baton::testing::Flood;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;

// Clients keep sending while the reactor stops: Stop + Wait return, every
// connection is closed (clients see EOF or reset), nothing leaks (ASan).
TEST(ReactorTest, StopUnderLoadClosesEverything) {
  Server s = StartServer(Threads(2), EchoFactory());
  constexpr int kClients = 16;
  std::atomic<bool> go{true};
  std::atomic<int> round_trips{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(s.port, 5000);
      if (fd < 0) return;
      const std::string msg = Pattern(4096, c);
      // Bounded: stops on the first failure (the server went away) or after
      // 100000 rounds.
      for (int i = 0; i < 100000 && go; ++i) {
        if (!EchoRoundTrip(fd, msg).ok()) break;
        round_trips.fetch_add(1);
      }
      ::close(fd);
    });
  }
  ASSERT_TRUE(Eventually([&] { return round_trips.load() > kClients * 20; }));
  s.reactor->Stop();
  s.reactor->Wait();
  go = false;
  for (auto& t : clients) t.join();
  EXPECT_EQ(s.reactor->connection_count(), 0u);
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_EQ(c.closes, c.accepts);
}

class StopOnData : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    conn.reactor().Stop();
  }
};

TEST(ReactorTest, StopFromInsideAHandler) {
  Server s =
      StartServer(Threads(2), [] { return std::make_unique<StopOnData>(); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_TRUE(SendAll(fd, "bye").ok());
  s.reactor->Wait();  // returns because the handler stopped the reactor
  EXPECT_TRUE(s.reactor->stopping());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "bye");
  ::close(fd);
}

// Drain: the idle connection is closed at once, the one with a reply in
// flight gets all of it first, and nobody new is let in.
TEST(ReactorTest, DrainClosesIdleAtOnceAndFinishesTransfers) {
  static constexpr size_t kReply = 8 << 20;
  Server s =
      StartServer(Threads(2), [] { return std::make_unique<Flood>(kReply); });
  const int idle = ConnectLoopback(s.port);
  const int busy = ConnectLoopback(s.port);
  ASSERT_GE(idle, 0);
  ASSERT_GE(busy, 0);
  ASSERT_TRUE(SendAll(busy, "x").ok());
  // The reply has started, so most of it is queued in the server.
  absl::StatusOr<std::string> first = ReadExact(busy, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 2; }));
  s.reactor->Drain();
  absl::StatusOr<std::string> idle_got = ReadToEof(idle);
  ASSERT_TRUE(idle_got.ok()) << idle_got.status();
  EXPECT_TRUE(idle_got->empty());
  absl::StatusOr<std::string> rest = ReadToEof(busy);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(*first + *rest == std::string(kReply, 'f'));
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  EXPECT_EQ(ConnectErrno(s.port), ECONNREFUSED) << "accepted while draining";
  EXPECT_EQ(s.reactor->Counters().closes, 2u);
  ::close(idle);
  ::close(busy);
}

// StopAccepting: connects are refused and Listen fails, while a connection
// already open keeps working both ways and stays open until its peer ends
// it.
TEST(ReactorTest, StopAcceptingRefusesNewcomersAndLeavesOpenConnections) {
  Server s = StartServer(Threads(2), EchoFactory());
  const int open = ConnectLoopback(s.port);
  ASSERT_GE(open, 0);
  ASSERT_TRUE(EchoRoundTrip(open, Pattern(1000, 1)).ok());
  s.reactor->StopAccepting();
  s.reactor->StopAccepting();  // idempotent
  EXPECT_EQ(ConnectErrno(s.port), ECONNREFUSED) << "accepted after it";
  EXPECT_FALSE(s.reactor->Listen(ListenOptions{}, EchoFactory()).ok());
  // Not drained: the open connection still echoes, 4 MB byte-exact.
  EXPECT_TRUE(EchoRoundTrip(open, Pattern(4 << 20, 2)).ok());
  EXPECT_EQ(s.reactor->connection_count(), 1u);
  EXPECT_EQ(s.reactor->Counters().accepts, 1u);
  ::close(open);
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
}

TEST(ReactorTest, CountersSeeTheWork) {
  Server s = StartServer(Threads(2), EchoFactory());
  const int fd = ConnectLoopback(s.port);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(EchoRoundTrip(fd, Pattern(64, i)).ok());
  }
  ::close(fd);
  ASSERT_TRUE(Eventually([&] { return s.reactor->Counters().closes == 1; }));
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_EQ(c.accepts, 1u);
  EXPECT_EQ(c.bytes_read, 50u * 64);
  EXPECT_EQ(c.bytes_written, 50u * 64);
  // Each message is served either from an epoll event or by a re-read;
  // every event-driven round ends in a re-arm.
  EXPECT_GE(c.events + c.reread_hits, 50u);
  EXPECT_GE(c.rearms, 1u);
  EXPECT_LE(c.reread_hits, c.rereads);
  EXPECT_EQ(s.reactor->ThreadCounters().size(), 2u);
  EXPECT_NE(c.ToString().find("rearms="), std::string::npos);
}

}  // namespace
}  // namespace baton
