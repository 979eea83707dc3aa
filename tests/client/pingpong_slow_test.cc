// Tests for the head-of-line options of the ping-pong load
// (PingPongOptions::slow_connections, the fast/slow split) against an
// in-process echo server that counts marker bytes, and the bench binary's
// --slow_connections output. Counts only; no timing assertions.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/pingpong.h"
#include "tests/client/test_servers.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::TestServer;

// Echoes, counting the bytes equal to the marker that it saw.
class MarkerCountingHandler : public ConnectionHandler {
 public:
  explicit MarkerCountingHandler(std::atomic<int64_t>* markers)
      : markers_(markers) {}
  void OnData(Connection& conn, absl::string_view data) override {
    int64_t n = 0;
    for (char c : data) n += static_cast<unsigned char>(c) == kMarker;
    markers_->fetch_add(n);
    conn.Write(data);
  }
  static constexpr unsigned char kMarker = 0xab;

 private:
  std::atomic<int64_t>* const markers_;
};

PingPongOptions Options(const Endpoint& endpoint) {
  PingPongOptions o;
  o.endpoint = endpoint;
  o.threads = 2;
  o.connections = 5;
  o.size = 64;
  o.duration_s = 0.3;
  o.slow_byte = MarkerCountingHandler::kMarker;
  return o;
}

TEST(PingPongSlowTest, SplitsFastAndSlowAndMarksOnlySlowMessages) {
  std::atomic<int64_t> markers{0};
  TestServer server(
      [&markers] { return std::make_unique<MarkerCountingHandler>(&markers); });
  PingPongOptions o = Options(server.endpoint());
  o.slow_connections = 2;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->slow.connections, 4);  // 2 per thread, 2 threads
  EXPECT_EQ(r->fast.connections, 6);
  EXPECT_GT(r->slow.round_trips, 0);
  EXPECT_GT(r->fast.round_trips, 0);
  EXPECT_EQ(r->fast.round_trips + r->slow.round_trips, r->round_trips);
  EXPECT_EQ(r->fast.latency.count(), r->fast.round_trips);
  EXPECT_EQ(r->slow.latency.count(), r->slow.round_trips);
  EXPECT_EQ(r->latency.count(), r->round_trips);
  // Without warm-up every completed slow round trip counts; at most one
  // more message per slow connection was in flight at the end. Fast
  // messages hold no marker byte at all, or the count would exceed this.
  const int64_t seen = markers.load();
  EXPECT_GE(seen, r->slow.round_trips);
  EXPECT_LE(seen, r->slow.round_trips + r->slow.connections);
}

TEST(PingPongSlowTest, NoSlowConnectionsMeansNoMarkerByteSent) {
  std::atomic<int64_t> markers{0};
  TestServer server(
      [&markers] { return std::make_unique<MarkerCountingHandler>(&markers); });
  absl::StatusOr<PingPongResult> r = RunPingPong(Options(server.endpoint()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->fast.round_trips, 0);
  EXPECT_EQ(r->fast.round_trips, r->round_trips);
  EXPECT_EQ(r->slow.round_trips, 0);
  EXPECT_EQ(r->slow.connections, 0);
  EXPECT_EQ(markers.load(), 0);
}

TEST(PingPongSlowTest, AllSlowAndOutOfRange) {
  std::atomic<int64_t> markers{0};
  TestServer server(
      [&markers] { return std::make_unique<MarkerCountingHandler>(&markers); });
  PingPongOptions o = Options(server.endpoint());
  o.slow_connections = o.connections;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fast.round_trips, 0);
  EXPECT_EQ(r->slow.round_trips, r->round_trips);
  o.slow_connections = o.connections + 1;
  EXPECT_EQ(RunPingPong(o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The binary: --json carries "fast" and "slow"; text shows both lines.
std::string RunBench(const std::string& args, int* exit_code) {
  const std::string command = absl::StrCat(
      "timeout 60 ", ::baton::testing::RunfilePath("client/bench"), " ", args,
      " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (pipe != nullptr && (n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) {
    out.append(buf, n);
  }
  const int status = pipe != nullptr ? ::pclose(pipe) : -1;
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(BenchSlowBinaryTest, ReportsFastAndSlowApart) {
  std::atomic<int64_t> markers{0};
  TestServer server(
      [&markers] { return std::make_unique<MarkerCountingHandler>(&markers); });
  const std::string common = absl::StrCat(
      "--mode=pingpong --duration=0.3 --connections=4 --slow_connections=1 "
      "--slow_byte=171 --port=",
      server.port());
  int code = -1;
  std::string out = RunBench(common + " --json", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"slow_connections\":1,\"slow_byte\":171,"
                     "\"fast\":{\"connections\":3,\"round_trips\":"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"slow\":{\"connections\":1,\"round_trips\":"),
            std::string::npos)
      << out;
  out = RunBench(common, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("fast: 3 connections: "), std::string::npos) << out;
  EXPECT_NE(out.find("slow: 1 connections: "), std::string::npos) << out;
  EXPECT_GT(markers.load(), 0);
}

TEST(BenchSlowBinaryTest, RejectsBadSlowFlags) {
  for (const char* args :
       {"--slow_connections=-1", "--slow_byte=256", "--slow_byte=-2",
        "--mode=pingpong --connections=2 --slow_connections=3"}) {
    int code = -1;
    const std::string out = RunBench(args, &code);
    EXPECT_NE(code, 0) << args << ": " << out;
    const std::string flag = std::string(args).find("slow_byte") !=
                                     std::string::npos
                                 ? "slow_byte"
                                 : "slow_connections";
    EXPECT_NE(out.find("--" + flag), std::string::npos) << args << ": " << out;
  }
}

}  // namespace
}  // namespace baton::client
