// Tests for the load generators against in-process baton servers on
// loopback: correct servers pass, corrupting or absent servers fail.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "baton/reactor.h"
#include "client/barrier.h"
#include "client/http_load.h"
#include "client/net.h"
#include "client/pingpong.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::RunfilePath;

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// Echoes, but flips one bit of the 100th byte it ever sends.
class Corrupting : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    std::string copy(data);
    if (sent_ <= 100 && sent_ + copy.size() > 100) copy[100 - sent_] ^= 0x04;
    sent_ += copy.size();
    conn.Write(copy);
  }

 private:
  size_t sent_ = 0;
};

// Answers every request (ends at a blank line) with a fixed response.
class FixedHttp : public ConnectionHandler {
 public:
  explicit FixedHttp(std::string response) : response_(std::move(response)) {}
  void OnData(Connection& conn, absl::string_view data) override {
    pending_.append(data.data(), data.size());
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) != std::string::npos) {
      const bool keep = pending_.find("HTTP/1.1") < end;
      pending_.erase(0, end + 4);
      conn.Write(response_);
      if (!keep) conn.Close();
    }
  }

 private:
  std::string response_;
  std::string pending_;
};

struct Server {
  std::unique_ptr<Reactor> reactor;
  client::Endpoint endpoint;
  int port = 0;
};

Server Start(HandlerFactory factory) {
  Server s;
  ReactorOptions o;
  o.threads = 2;
  s.reactor = std::move(*Reactor::Create(o));
  s.port = *s.reactor->Listen(ListenOptions{}, std::move(factory));
  EXPECT_TRUE(s.reactor->Start().ok());
  s.endpoint = *client::ResolveEndpoint("127.0.0.1", s.port);
  return s;
}

HandlerFactory EchoFactory() {
  return [] { return std::make_unique<Echo>(); };
}

// A port nothing listens on: bind one, read it back, close it.
int ClosedPort() {
  auto r = Reactor::Create(ReactorOptions{});
  const int port = *(*r)->Listen(ListenOptions{}, EchoFactory());
  return port;  // the reactor (and its listener) is destroyed here
}

TEST(BarrierBenchTest, ReleasesAllThreadsTogetherAndVerifiesReplies) {
  Server s = Start(EchoFactory());
  client::BarrierOptions o;
  o.endpoint = s.endpoint;
  o.threads = 50;
  o.rounds = 10;
  o.size = 13;
  absl::StatusOr<client::BarrierResult> r = client::RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0);
  ASSERT_EQ(r->threads.size(), 50u);
  int64_t last_wait = -1, first_start = INT64_MAX;
  for (const auto& t : r->threads) {
    EXPECT_TRUE(t.error.empty()) << t.error;
    EXPECT_GT(t.avg_us, 0);
    last_wait = std::max(last_wait, t.waited_seq);
    first_start = std::min(first_start, t.started_seq);
  }
  // Every thread was waiting before any thread started timing.
  EXPECT_LT(last_wait, first_start);
  EXPECT_EQ(s.reactor->Counters().bytes_read, 50u * 10 * 13);
}

TEST(BarrierBenchTest, CorruptedReplyIsReported) {
  Server s = Start([] { return std::make_unique<Corrupting>(); });
  client::BarrierOptions o;
  o.endpoint = s.endpoint;
  o.threads = 2;
  o.rounds = 20;
  o.size = 13;
  absl::StatusOr<client::BarrierResult> r = client::RunBarrier(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 2);
  EXPECT_NE(r->threads[0].error.find("differs"), std::string::npos)
      << r->threads[0].error;
}

TEST(PingPongTest, CountsVerifiedRoundTrips) {
  Server s = Start(EchoFactory());
  client::PingPongOptions o;
  o.endpoint = s.endpoint;
  o.threads = 2;
  o.connections = 10;
  o.size = 1000;
  o.duration_s = 0.5;
  absl::StatusOr<client::PingPongResult> r = client::RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->round_trips, 0);
  EXPECT_EQ(r->latency.count(), r->round_trips);
  EXPECT_GE(s.reactor->Counters().bytes_read,
            static_cast<uint64_t>(r->round_trips) * 1000);
}

TEST(PingPongTest, LargeMessagesPastTheSocketBuffers) {
  Server s = Start(EchoFactory());
  client::PingPongOptions o;
  o.endpoint = s.endpoint;
  o.connections = 2;
  o.size = 3 << 20;
  o.duration_s = 0.5;
  absl::StatusOr<client::PingPongResult> r = client::RunPingPong(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->round_trips, 0);
}

TEST(PingPongTest, CorruptedReplyFails) {
  Server s = Start([] { return std::make_unique<Corrupting>(); });
  client::PingPongOptions o;
  o.endpoint = s.endpoint;
  o.connections = 1;
  o.size = 64;
  o.duration_s = 2;
  absl::StatusOr<client::PingPongResult> r = client::RunPingPong(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST(HttpLoadTest, GoodResponsesPerConnectionAndKeepAlive) {
  const std::string response =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
      "\r\nhello";
  Server s = Start([response] { return std::make_unique<FixedHttp>(response); });
  for (bool keepalive : {false, true}) {
    client::HttpLoadOptions o;
    o.endpoint = s.endpoint;
    o.threads = 2;
    o.connections = 4;
    o.requests = 400;
    o.keepalive = keepalive;
    absl::StatusOr<client::HttpLoadResult> r = client::RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->good, 400) << "keepalive=" << keepalive << " "
                            << r->first_problem;
    EXPECT_EQ(r->bad + r->errors, 0);
    EXPECT_EQ(r->body_bytes, 400 * 5);
  }
  // Connection per request opened ~400 connections; keep-alive about 8.
  EXPECT_LT(s.reactor->Counters().accepts, 400u + 8u + 1u);
  EXPECT_GE(s.reactor->Counters().accepts, 400u);
}

TEST(HttpLoadTest, ShortBodyAndErrorStatusAreBad) {
  for (const std::string& response :
       {std::string("HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        std::string("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")}) {
    Server s =
        Start([response] { return std::make_unique<FixedHttp>(response); });
    client::HttpLoadOptions o;
    o.endpoint = s.endpoint;
    o.requests = 20;
    o.timeout_ms = 3000;
    absl::StatusOr<client::HttpLoadResult> r = client::RunHttpLoad(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->good, 0) << response;
    EXPECT_EQ(r->bad, 20) << response << " " << r->first_problem;
  }
}

TEST(HttpLoadTest, NoServerIsErrors) {
  client::HttpLoadOptions o;
  o.endpoint = *client::ResolveEndpoint("127.0.0.1", ClosedPort());
  o.requests = 50;
  absl::StatusOr<client::HttpLoadResult> r = client::RunHttpLoad(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 50);
  EXPECT_NE(r->first_problem.find("refused"), std::string::npos)
      << r->first_problem;
}

// --- the binaries ---------------------------------------------------------

struct Outcome {
  int status = -1;
  std::string output;
};

// Runs `binary args` to completion (bounded), capturing stdout+stderr.
Outcome RunBinary(const std::string& binary, const std::string& args) {
  Outcome r;
  const std::string command =
      absl::StrCat("timeout 60 ", binary, " ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  r.status = ::pclose(pipe);
  return r;
}

TEST(BenchBinaryTest, BarrierOutputFileHasOneLinePerThreadSortedById) {
  Server s = Start(EchoFactory());
  const std::string out = absl::StrCat(::testing::TempDir(), "/bench.txt");
  const int port = s.port;
  Outcome r = RunBinary(RunfilePath("client/bench"),
                    absl::StrCat("--threads=40 --port=", port,
                                 " --output=", out));
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.output;
  std::ifstream in(out);
  std::string line;
  int expected_id = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    int id;
    double avg;
    ASSERT_TRUE(fields >> id >> avg) << "bad line: " << line;
    EXPECT_EQ(id, expected_id++);
    EXPECT_GT(avg, 0);
  }
  EXPECT_EQ(expected_id, 40);
}

TEST(BenchBinaryTest, FailsFastWithNothingListening) {
  for (const char* mode : {"barrier", "pingpong", "http"}) {
    const int64_t start = client::NowNanos();
    Outcome r = RunBinary(RunfilePath("client/bench"),
                      absl::StrCat("--mode=", mode, " --port=", ClosedPort(),
                                   " --threads=4 --connections=2 "
                                   "--requests=20 --duration=3"));
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0)
        << mode << ": " << r.output;
    EXPECT_LT(client::NowNanos() - start, int64_t{20} * 1000000000) << mode;
    EXPECT_NE(r.output.find("refused"), std::string::npos)
        << mode << ": " << r.output;
  }
}

TEST(BenchBinaryTest, RejectsBadFlags) {
  for (const char* args : {"--mode=nope", "--threads=0", "--host=localhost",
                           "--port=70000", "--duration=-1"}) {
    Outcome r = RunBinary(RunfilePath("client/bench"), args);
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0)
        << args << ": " << r.output;
  }
}

TEST(DeadconnTest, HoldsTheConnectionsItPromises) {
  Server s = Start(EchoFactory());
  const int port = s.port;
  ChildServer deadconn;  // not a server, but the same launcher fits
  ASSERT_TRUE(deadconn
                  .Start(RunfilePath("client/deadconn"),
                         {"--connections=300", absl::StrCat("--port=", port),
                          "--duration=30"},
                         "holding ([0-9]+)")
                  .ok())
      << deadconn.output();
  EXPECT_EQ(deadconn.port(), 300) << "the number it says it holds";
  // Count them on the server side too.
  bool held = false;
  for (int i = 0; i < 200 && !held; ++i) {
    held = s.reactor->connection_count() == 300;
    if (!held) usleep(50000);
  }
  EXPECT_TRUE(held) << "server sees " << s.reactor->connection_count();
  absl::StatusOr<int> status = deadconn.StopWith(SIGINT, 10000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << deadconn.output();
  for (int i = 0; i < 200 && s.reactor->connection_count() != 0; ++i) {
    usleep(50000);
  }
  EXPECT_EQ(s.reactor->connection_count(), 0u);
}

}  // namespace
}  // namespace baton
