// Tests for the idle-connection holder (client/dead_connections.h) against
// in-process baton servers on loopback; connections are counted on the
// server side.
#include "client/dead_connections.h"

#include <gtest/gtest.h>

#include <memory>

#include "tests/client/test_servers.h"

namespace baton::client {
namespace {

using ::baton::testing::EchoHandler;
using ::baton::testing::RefusingPort;
using ::baton::testing::TestServer;

auto Never() {
  return [] { return false; };
}

DeadConnOptions Options(const Endpoint& endpoint, int n) {
  DeadConnOptions o;
  o.endpoint = endpoint;
  o.connections = n;
  o.in_flight = 64;  // fewer than n, so the window is exercised
  return o;
}

TEST(DeadConnectionsTest, HoldsNConnectionsCountedByTheServer) {
  auto server = TestServer::Of<EchoHandler>();
  int calls = 0;
  {
    DeadConnections dead(Options(server->endpoint(), 300));
    dead.Open(
        Never(), [&](int opened, int failed) { ++calls; }, 100);
    EXPECT_EQ(dead.held(), 300);
    EXPECT_EQ(dead.failed(), 0) << dead.first_error();
    EXPECT_TRUE(server->WaitForConnections(300))
        << server->reactor().connection_count();
    // Idle: nothing was sent.
    EXPECT_EQ(server->reactor().Counters().bytes_read, 0u);
    dead.Hold(NowNanos() + 100 * 1000000, Never());
    EXPECT_EQ(dead.held(), 300);
    EXPECT_EQ(dead.dropped(), 0);
    dead.CloseAll();
    EXPECT_EQ(dead.held(), 0);
    EXPECT_TRUE(server->WaitForConnections(0));
  }
  // Reported about every 100 attempts (once per batch of connect events).
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 3);
}

TEST(DeadConnectionsTest, PartialRequestsReachTheServer) {
  auto server = TestServer::Of<EchoHandler>();  // nothing echoed is read
  DeadConnOptions o = Options(server->endpoint(), 100);
  o.partial_request = true;
  DeadConnections dead(o);
  dead.Open(Never());
  EXPECT_EQ(dead.held(), 100) << dead.first_error();
  EXPECT_TRUE(server->WaitForConnections(100));
  const std::string& partial = dead.partial_request();
  EXPECT_EQ(partial.find("\r\n\r\n"), std::string::npos) << "never complete";
  EXPECT_TRUE(server->WaitForBytesRead(100u * partial.size()))
      << server->reactor().Counters().bytes_read;
}

TEST(DeadConnectionsTest, ConnectionsTheServerClosesAreCountedAsDropped) {
  TestServer server([] { return std::make_unique<EchoHandler>(); },
                    absl::Milliseconds(200));  // idle timeout
  DeadConnections dead(Options(server.endpoint(), 20));
  dead.Open(Never());
  ASSERT_EQ(dead.held() + dead.dropped(), 20) << dead.first_error();
  // Held until all are dropped (bounded by the deadline).
  const int64_t deadline = NowNanos() + int64_t{10} * 1000000000;
  dead.Hold(deadline, [&] { return dead.held() == 0; });
  EXPECT_EQ(dead.held(), 0);
  EXPECT_EQ(dead.dropped(), 20);
}

TEST(DeadConnectionsTest, StopsHoldingWhenAsked) {
  auto server = TestServer::Of<EchoHandler>();
  DeadConnections dead(Options(server->endpoint(), 5));
  dead.Open(Never());
  const int64_t start = NowNanos();
  int polls = 0;
  // Far-off end; the stop predicate ends it after a few checks.
  dead.Hold(start + int64_t{600} * 1000000000, [&] { return ++polls > 3; });
  EXPECT_EQ(dead.held(), 5);
  EXPECT_LT(NowNanos() - start, int64_t{60} * 1000000000);
}

TEST(DeadConnectionsTest, NothingListeningCountsFailures) {
  RefusingPort refusing;
  DeadConnections dead(Options(refusing.endpoint(), 200));
  dead.Open(Never());
  EXPECT_EQ(dead.held(), 0);
  EXPECT_EQ(dead.failed(), 200);
  EXPECT_NE(dead.first_error().find("Connection refused"), std::string::npos)
      << dead.first_error();
}

}  // namespace
}  // namespace baton::client
