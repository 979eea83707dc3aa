// Tests for the head-of-line options of the ping-pong load
// (PingPongOptions::slow_connections, the fast/slow split) against an
// in-process echo server that counts marker bytes, and the bench binary's
// --slow_connections output. Counts only; no timing assertions: the loads
// run a fixed number of round trips per connection
// (PingPongOptions::round_trips_per_connection), so every count is exact
// however slow the machine is; the clocks only bound a hang.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/pingpong.h"
#include "tests/client/test_servers.h"
#include "tests/util/test_client.h"

namespace baton::client {
namespace {

using ::baton::testing::TestServer;

// Marker bytes seen by the server, with a bounded wait for a count.
class MarkerCount {
 public:
  void Add(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_ += n;
    cv_.notify_all();
  }
  // Waits (up to 60 s, only a hang reaches it) until at least `n` markers
  // were seen; returns the count then.
  int64_t WaitForAtLeast(int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return seen_ >= n; });
    return seen_;
  }
  int64_t Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t seen_ = 0;
};

// Echoes, counting the bytes equal to the marker that it saw (before the
// echo, so a client that has its reply has been counted).
class MarkerCountingHandler : public ConnectionHandler {
 public:
  explicit MarkerCountingHandler(MarkerCount* markers) : markers_(markers) {}
  void OnData(Connection& conn, absl::string_view data) override {
    int64_t n = 0;
    for (char c : data) n += static_cast<unsigned char>(c) == kMarker;
    if (n > 0) markers_->Add(n);
    conn.Write(data);
  }
  static constexpr unsigned char kMarker = 0xab;

 private:
  MarkerCount* const markers_;
};

std::unique_ptr<TestServer> MarkerServer(MarkerCount* markers) {
  return std::make_unique<TestServer>(
      [markers] { return std::make_unique<MarkerCountingHandler>(markers); });
}

constexpr int64_t kRoundTrips = 20;  // per connection

// A fixed amount of work: kRoundTrips per connection. duration_s and
// timeout_ms only bound a hang.
PingPongOptions Options(const Endpoint& endpoint) {
  PingPongOptions o;
  o.endpoint = endpoint;
  o.threads = 2;
  o.connections = 5;
  o.size = 64;
  o.duration_s = 300;
  o.timeout_ms = 60000;
  o.round_trips_per_connection = kRoundTrips;
  o.slow_byte = MarkerCountingHandler::kMarker;
  return o;
}

TEST(PingPongSlowTest, SplitsFastAndSlowAndMarksOnlySlowMessages) {
  MarkerCount markers;
  auto server = MarkerServer(&markers);
  PingPongOptions o = Options(server->endpoint());
  o.slow_connections = 2;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->slow.connections, 4);  // 2 per thread, 2 threads
  EXPECT_EQ(r->fast.connections, 6);
  EXPECT_EQ(r->slow.round_trips, 4 * kRoundTrips);
  EXPECT_EQ(r->fast.round_trips, 6 * kRoundTrips);
  EXPECT_EQ(r->round_trips, 10 * kRoundTrips);
  EXPECT_EQ(r->fast.latency.count(), r->fast.round_trips);
  EXPECT_EQ(r->slow.latency.count(), r->slow.round_trips);
  EXPECT_EQ(r->latency.count(), r->round_trips);
  // Every slow message carries one marker byte and fast ones none, so the
  // server saw exactly one marker per slow round trip: a fast message with
  // a marker, or a slow one without, changes the count. Each was counted
  // before its reply, and every reply arrived.
  EXPECT_EQ(markers.Get(), 4 * kRoundTrips);
  // Nothing was left in flight that could still add a marker.
  EXPECT_EQ(server->reactor().Counters().bytes_read,
            static_cast<uint64_t>(10 * kRoundTrips * o.size));
}

TEST(PingPongSlowTest, NoSlowConnectionsMeansNoMarkerByteSent) {
  MarkerCount markers;
  auto server = MarkerServer(&markers);
  PingPongOptions o = Options(server->endpoint());
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fast.round_trips, 10 * kRoundTrips);
  EXPECT_EQ(r->fast.round_trips, r->round_trips);
  EXPECT_EQ(r->slow.round_trips, 0);
  EXPECT_EQ(r->slow.connections, 0);
  EXPECT_EQ(server->reactor().Counters().bytes_read,
            static_cast<uint64_t>(10 * kRoundTrips * o.size));
  EXPECT_EQ(markers.Get(), 0);
}

TEST(PingPongSlowTest, AllSlowAndOutOfRange) {
  MarkerCount markers;
  auto server = MarkerServer(&markers);
  PingPongOptions o = Options(server->endpoint());
  o.slow_connections = o.connections;
  absl::StatusOr<PingPongResult> r = RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fast.round_trips, 0);
  EXPECT_EQ(r->slow.round_trips, 10 * kRoundTrips);
  EXPECT_EQ(r->slow.round_trips, r->round_trips);
  EXPECT_EQ(markers.Get(), 10 * kRoundTrips);
  o.slow_connections = o.connections + 1;
  EXPECT_EQ(RunPingPong(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.slow_connections = 0;
  o.round_trips_per_connection = -1;
  EXPECT_EQ(RunPingPong(o).status().code(), absl::StatusCode::kInvalidArgument);
}

// The binary: --json carries "fast" and "slow"; text shows both lines.
std::string RunBench(const std::string& args, int* exit_code) {
  const std::string command =
      absl::StrCat("timeout 60 ", ::baton::testing::RunfilePath("client/bench"),
                   " ", args, " 2>&1");
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
  MarkerCount markers;
  auto server = MarkerServer(&markers);
  // A fixed amount of work (--round_trips); --duration and --timeout_ms
  // only bound a hang.
  const std::string common = absl::StrCat(
      "--mode=pingpong --duration=300 --timeout_ms=60000 --round_trips=7 "
      "--connections=4 --slow_connections=1 --slow_byte=171 --port=",
      server->port());
  int code = -1;
  std::string out = RunBench(common + " --json", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"slow_connections\":1,\"slow_byte\":171,"
                     "\"fast\":{\"connections\":3,\"round_trips\":21,"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"slow\":{\"connections\":1,\"round_trips\":7,"),
            std::string::npos)
      << out;
  EXPECT_EQ(markers.Get(), 7);
  out = RunBench(common, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("fast: 3 connections: 21 round trips"), std::string::npos)
      << out;
  EXPECT_NE(out.find("slow: 1 connections: 7 round trips"), std::string::npos)
      << out;
  EXPECT_EQ(markers.Get(), 14);  // 7 slow messages per run
}

TEST(BenchSlowBinaryTest, RejectsBadSlowAndRoundTripFlags) {
  struct Case {
    const char* args;
    const char* flag;  // named in the error
  };
  for (const Case& c : {
           Case{"--slow_connections=-1", "--slow_connections"},
           Case{"--slow_byte=256", "--slow_byte"},
           Case{"--slow_byte=-2", "--slow_byte"},
           Case{"--mode=pingpong --connections=2 --slow_connections=3",
                "--slow_connections"},
           Case{"--round_trips=-1", "--round_trips"},
       }) {
    int code = -1;
    const std::string out = RunBench(c.args, &code);
    EXPECT_NE(code, 0) << c.args << ": " << out;
    EXPECT_NE(out.find(c.flag), std::string::npos) << c.args << ": " << out;
  }
}

}  // namespace
}  // namespace baton::client
