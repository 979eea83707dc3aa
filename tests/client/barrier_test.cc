// Tests for the kecho-style barrier bench (client/barrier.h) against
// in-process baton servers on loopback.
#include "client/barrier.h"

#include <gtest/gtest.h>

#include <algorithm>
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

BarrierOptions Options(const Endpoint& endpoint, int threads) {
  BarrierOptions o;
  o.endpoint = endpoint;
  o.threads = threads;
  o.timeout_ms = 5000;
  return o;
}

TEST(BarrierTest, ReleasesAllThreadsTogetherAndVerifiesReplies) {
  auto server = TestServer::Of<EchoHandler>();
  BarrierProgress progress;
  BarrierOptions o = Options(server->endpoint(), 50);
  o.progress = &progress;
  absl::StatusOr<BarrierResult> r = RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0);
  ASSERT_EQ(r->threads.size(), 50u);
  int64_t last_wait = -1;
  int64_t first_start = INT64_MAX;
  for (int i = 0; i < 50; ++i) {
    const BarrierThreadResult& t = r->threads[i];
    EXPECT_EQ(t.id, i) << "sorted by thread id";
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_GT(t.avg_us, 0);
    ASSERT_GE(t.waited_seq, 0);
    ASSERT_GE(t.started_seq, 0);
    last_wait = std::max(last_wait, t.waited_seq);
    first_start = std::min(first_start, t.started_seq);
  }
  // Every thread was waiting at the barrier before any thread started timing.
  EXPECT_LT(last_wait, first_start);
  EXPECT_EQ(last_wait, 49);
  // Every round trip of every thread reached the server (kecho defaults).
  EXPECT_TRUE(server->WaitForBytesRead(50u * 10 * 13));
  EXPECT_EQ(progress.connected.load(), 50);
  EXPECT_TRUE(progress.released.load());
  EXPECT_EQ(progress.finished.load(), 50);
  EXPECT_TRUE(GroupErrors(*r).empty());
}

TEST(BarrierTest, CorruptedReplyIsReported) {
  auto server = TestServer::Of<CorruptingHandler>();
  BarrierOptions o = Options(server->endpoint(), 2);
  o.rounds = 20;  // 260 bytes: the 100th is corrupted in round 7
  absl::StatusOr<BarrierResult> r = RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 2);
  for (const BarrierThreadResult& t : r->threads) {
    EXPECT_NE(t.error.find("round 7: reply byte 9 of 13 differs"),
              std::string::npos)
        << t.error;
  }
}

TEST(BarrierTest, MessagesLargerThanTheSocketBuffersDoNotDeadlock) {
  auto server = TestServer::Of<EchoHandler>();
  BarrierOptions o = Options(server->endpoint(), 2);
  o.rounds = 2;
  o.size = 3 << 20;
  absl::StatusOr<BarrierResult> r = RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0) << r->threads[0].error;
}

TEST(BarrierTest, SilentServerTimesOut) {
  auto server = TestServer::Of<SilentHandler>();
  BarrierOptions o = Options(server->endpoint(), 3);
  o.timeout_ms = 300;
  absl::StatusOr<BarrierResult> r = RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 3);
  const std::vector<ErrorGroup> groups = GroupErrors(*r);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].threads, 3);
  EXPECT_NE(groups[0].message.find("round 0: timed out after 300 ms"),
            std::string::npos)
      << groups[0].message;
}

TEST(BarrierTest, ResetConnectionIsReported) {
  auto server = TestServer::Of<ResettingHandler>();
  absl::StatusOr<BarrierResult> r = RunBarrier(Options(server->endpoint(), 2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 2);
  for (const BarrierThreadResult& t : r->threads) {
    EXPECT_NE(t.error.find("round 0: "), std::string::npos) << t.error;
    // RST after the request: a reset, or EOF if the RST raced the read.
    EXPECT_TRUE(t.error.find("reset") != std::string::npos ||
                t.error.find("closed") != std::string::npos)
        << t.error;
  }
}

TEST(BarrierTest, NothingListeningFailsEveryThreadAtOnce) {
  RefusingPort refusing;
  absl::StatusOr<BarrierResult> r =
      RunBarrier(Options(refusing.endpoint(), 20));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 20);
  const std::vector<ErrorGroup> groups = GroupErrors(*r);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].threads, 20);
  EXPECT_EQ(groups[0].first_thread, 0);
  EXPECT_NE(groups[0].message.find("Connection refused"), std::string::npos)
      << groups[0].message;
}

TEST(BarrierTest, RejectsNonPositiveOptions) {
  RefusingPort refusing;
  BarrierOptions o = Options(refusing.endpoint(), 0);
  EXPECT_EQ(RunBarrier(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::client
