// Tests for the ping-pong load (client/pingpong.h) against in-process baton
// servers on loopback.
#include "client/pingpong.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "tests/client/test_servers.h"

namespace baton::client {
namespace {

using ::baton::testing::CorruptingHandler;
using ::baton::testing::EchoHandler;
using ::baton::testing::RefusingPort;
using ::baton::testing::ResettingHandler;
using ::baton::testing::SilentHandler;
using ::baton::testing::TestServer;

PingPongOptions Options(const Endpoint& endpoint) {
  PingPongOptions o;
  o.endpoint = endpoint;
  o.threads = 1;
  o.connections = 1;
  o.size = 64;
  o.duration_s = 0.5;
  o.timeout_ms = 5000;
  return o;
}

// The load only stops on a clock (PingPongOptions has no round-trip count),
// so a short window can end before a slow, loaded machine finishes one round
// trip. Runs again with the window doubled, at most `attempts` times, until
// at least one measured round trip completed: bounded in count, and as
// short as the machine allows. Any error ends it at once.
absl::StatusOr<PingPongResult> RunUntilCounted(PingPongOptions o,
                                               int attempts = 6) {
  absl::StatusOr<PingPongResult> r;
  for (int i = 0; i < attempts; ++i) {
    if (o.progress != nullptr) o.progress->store(0);
    r = RunPingPong(o);
    if (!r.ok() || r->round_trips > 0) return r;
    o.duration_s *= 2;
    o.warmup_s *= 2;
  }
  return r;
}

TEST(PingPongTest, CountsVerifiedRoundTripsOnManyConnections) {
  auto server = TestServer::Of<EchoHandler>();
  std::atomic<int64_t> progress{0};
  PingPongOptions o = Options(server->endpoint());
  o.threads = 2;
  o.connections = 10;
  o.size = 1000;
  o.progress = &progress;
  absl::StatusOr<PingPongResult> r = RunUntilCounted(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->round_trips, 0);
  EXPECT_EQ(r->latency.count(), r->round_trips);
  EXPECT_GE(progress.load(), r->round_trips);
  EXPECT_GT(r->seconds, 0);
  // Every counted round trip was read by the server (plus any in flight).
  EXPECT_GE(server->reactor().Counters().bytes_read,
            static_cast<uint64_t>(r->round_trips) * 1000);
  // 20 connections per run (more than one run if the window was too short).
  const uint64_t accepts = server->reactor().Counters().accepts;
  EXPECT_GE(accepts, 20u);
  EXPECT_EQ(accepts % 20, 0u) << accepts;
}

TEST(PingPongTest, WarmupRoundTripsAreNotCounted) {
  auto server = TestServer::Of<EchoHandler>();
  std::atomic<int64_t> progress{0};
  PingPongOptions o = Options(server->endpoint());
  o.warmup_s = 0.3;
  o.duration_s = 0.3;
  o.progress = &progress;
  absl::StatusOr<PingPongResult> r = RunUntilCounted(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->round_trips, 0);
  EXPECT_LT(r->round_trips, progress.load());
}

TEST(PingPongTest, LargeMessagesPastTheSocketBuffers) {
  auto server = TestServer::Of<EchoHandler>();
  PingPongOptions o = Options(server->endpoint());
  o.connections = 2;
  o.size = 3 << 20;
  absl::StatusOr<PingPongResult> r = RunUntilCounted(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->round_trips, 0);
}

TEST(PingPongTest, CorruptedReplyFails) {
  auto server = TestServer::Of<CorruptingHandler>();
  PingPongOptions o = Options(server->endpoint());
  o.duration_s = 5;  // ends at the corruption, long before this
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  // Byte 100 of the stream is byte 36 of the second 64-byte message.
  EXPECT_NE(r.status().message().find("reply byte 36 of message 1"),
            std::string::npos)
      << r.status();
}

TEST(PingPongTest, SilentServerTimesOut) {
  auto server = TestServer::Of<SilentHandler>();
  PingPongOptions o = Options(server->endpoint());
  o.duration_s = 30;  // the timeout, not the duration, must end it
  o.timeout_ms = 300;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_NE(r.status().message().find("no reply for 300 ms"), std::string::npos)
      << r.status();
}

TEST(PingPongTest, ResetConnectionFails) {
  auto server = TestServer::Of<ResettingHandler>();
  PingPongOptions o = Options(server->endpoint());
  o.duration_s = 30;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST(PingPongTest, NothingListeningFails) {
  RefusingPort refusing;
  PingPongOptions o = Options(refusing.endpoint());
  o.threads = 2;
  o.duration_s = 30;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Connection refused"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace baton::client
