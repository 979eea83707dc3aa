// End-to-end tests of the //client:bench and //client:deadconn binaries
// against in-process baton servers on loopback: exit statuses, the output
// file, --json, flag validation, signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "baton/reactor.h"
#include "client/dead_connections.h"
#include "client/net.h"
#include "tests/client/test_servers.h"
#include "tests/util/test_client.h"

namespace baton::testing {
namespace {

struct Outcome {
  int status = -1;     // as from waitpid
  std::string output;  // stdout, plus stderr unless it was kept apart
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Runs `binary args` to completion (killed after 60 s so nothing hangs),
// after `shell_prefix` (e.g. "ulimit -n 64 && ") in the same shell.
Outcome RunTool(const std::string& binary, const std::string& args,
                bool with_stderr = true, const std::string& shell_prefix = "") {
  Outcome r;
  const std::string command =
      absl::StrCat(shell_prefix, "timeout 60 ", RunfilePath(binary), " ", args,
                   with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
    r.output.append(buf, n);
  r.status = ::pclose(pipe);
  return r;
}

std::string Port(int port) { return absl::StrCat(" --port=", port, " "); }

TEST(BenchBinaryTest, BarrierOutputFileHasOneLinePerThreadSortedById) {
  auto server = TestServer::Of<EchoHandler>();
  const std::string out = absl::StrCat(::testing::TempDir(), "/bench.txt");
  Outcome r = RunTool(
      "client/bench",
      absl::StrCat("--threads=40", Port(server->port()), "--output=", out));
  ASSERT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_NE(r.output.find("40 threads x 10 round trips of 13 bytes, 0 failed"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("per-thread average us (40 threads): min "),
            std::string::npos)
      << r.output;
  std::ifstream in(out);
  std::string line;
  int expected_id = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    int id;
    double avg;
    std::string rest;
    ASSERT_TRUE(fields >> id >> avg) << "bad line: " << line;
    EXPECT_FALSE(fields >> rest) << "extra field in: " << line;
    EXPECT_EQ(id, expected_id++);
    EXPECT_GT(avg, 0);
  }
  EXPECT_EQ(expected_id, 40);
}

TEST(BenchBinaryTest, CorruptingServerMakesTheBenchFail) {
  auto server = TestServer::Of<CorruptingHandler>();
  for (const char* mode : {"barrier --rounds=20", "pingpong --duration=10"}) {
    Outcome r = RunTool(
        "client/bench",
        absl::StrCat("--mode=", mode, " --threads=2", Port(server->port())));
    EXPECT_EQ(r.exit_code(), 1) << mode << ": " << r.output;
    EXPECT_NE(r.output.find("differs from what was sent"), std::string::npos)
        << mode << ": " << r.output;
    EXPECT_NE(r.output.find("FAILED"), std::string::npos) << r.output;
  }
}

TEST(BenchBinaryTest, FailsFastWithNothingListening) {
  RefusingPort refusing;
  for (const char* mode : {"barrier", "pingpong", "http"}) {
    const int64_t start = client::NowNanos();
    Outcome r =
        RunTool("client/bench",
                absl::StrCat("--mode=", mode, Port(refusing.port()),
                             "--threads=4 --connections=2 ",
                             // A count of requests takes no --duration.
                             mode == std::string("http") ? "--requests=20"
                                                         : "--duration=30"));
    EXPECT_EQ(r.exit_code(), 1) << mode << ": " << r.output;
    // Bounded, not a timing assertion: a run that waited for --duration or
    // a timeout would take 30 s.
    EXPECT_LT(client::NowNanos() - start, int64_t{20} * 1000000000) << mode;
    EXPECT_NE(r.output.find("Connection refused"), std::string::npos)
        << mode << ": " << r.output;
  }
}

TEST(BenchBinaryTest, SilentServerTimesOutInEveryMode) {
  auto server = TestServer::Of<SilentHandler>();
  for (const char* mode : {"barrier", "pingpong", "http"}) {
    Outcome r = RunTool(
        "client/bench",
        absl::StrCat(
            "--mode=", mode, Port(server->port()), "--timeout_ms=300 ",
            mode == std::string("http") ? "--requests=2" : "--duration=30"));
    EXPECT_EQ(r.exit_code(), 1) << mode << ": " << r.output;
    EXPECT_NE(r.output.find("300 ms"), std::string::npos)
        << mode << ": " << r.output;
  }
}

// One JSON object on one line of stdout, whatever happened.
void ExpectOneJsonLine(const std::string& out, const std::string& head) {
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(out.rfind(head, 0), 0u) << out;
  EXPECT_EQ(out.substr(out.size() - 2), "}\n") << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '{'),
            std::count(out.begin(), out.end(), '}'))
      << out;
}

TEST(BenchBinaryTest, JsonSummaryForEveryMode) {
  auto echo = TestServer::Of<EchoHandler>();
  Outcome r = RunTool("client/bench",
                      absl::StrCat("--json --threads=3", Port(echo->port())),
                      /*with_stderr=*/false);
  EXPECT_EQ(r.exit_code(), 0);
  ExpectOneJsonLine(r.output, "{\"mode\":\"barrier\",\"ok\":true,");
  EXPECT_NE(r.output.find("\"avg_us\":{\"min\":"), std::string::npos);

  r = RunTool(
      "client/bench",
      absl::StrCat("--json --mode=pingpong --duration=0.3 --connections=3",
                   Port(echo->port())),
      false);
  EXPECT_EQ(r.exit_code(), 0);
  ExpectOneJsonLine(r.output, "{\"mode\":\"pingpong\",\"ok\":true,");
  EXPECT_NE(r.output.find("\"rate\":"), std::string::npos);
  EXPECT_NE(r.output.find("\"latency_us\":{\"mean\":"), std::string::npos);

  auto http = TestServer::Of<FixedHttpHandler>(
      std::string("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  r = RunTool(
      "client/bench",
      absl::StrCat("--json --mode=http --requests=30", Port(http->port())),
      false);
  EXPECT_EQ(r.exit_code(), 0);
  ExpectOneJsonLine(r.output, "{\"mode\":\"http\",\"ok\":true,");
  EXPECT_NE(r.output.find("\"good\":30,\"bad\":0,\"errors\":0"),
            std::string::npos)
      << r.output;

  RefusingPort refusing;
  r = RunTool("client/bench", absl::StrCat("--json", Port(refusing.port())),
              false);
  EXPECT_EQ(r.exit_code(), 1);
  ExpectOneJsonLine(r.output,
                    "{\"mode\":\"barrier\",\"ok\":false,\"error\":\"");
}

TEST(BenchBinaryTest, Ipv6Loopback) {
  auto reactor = Reactor::Create(ReactorOptions{});
  ASSERT_TRUE(reactor.ok());
  ListenOptions listen;
  listen.address = "::1";
  absl::StatusOr<int> port = (*reactor)->Listen(
      listen, [] { return std::make_unique<EchoHandler>(); });
  // No skip: a machine without ::1 fails this test rather than passing it.
  ASSERT_TRUE(port.ok()) << "this test needs the IPv6 loopback ::1 "
                            "(sysctl net.ipv6.conf.lo.disable_ipv6=0): "
                         << port.status();
  ASSERT_TRUE((*reactor)->Start().ok());
  Outcome r = RunTool("client/bench",
                      absl::StrCat("--host=::1 --threads=3", Port(*port)));
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  (*reactor)->Stop();
  (*reactor)->Wait();
}

TEST(BenchBinaryTest, SaysWhenTheDescriptorLimitIsTooLow) {
  RefusingPort refusing;  // never reached: the check comes first
  for (const char* args : {"--mode=pingpong --threads=3 --connections=100",
                           "--mode=barrier --threads=300"}) {
    Outcome r =
        RunTool("client/bench", absl::StrCat(args, Port(refusing.port())), true,
                "ulimit -n 64 && ");
    EXPECT_EQ(r.exit_code(), 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find("need 300 sockets"), std::string::npos)
        << args << ": " << r.output;
    EXPECT_NE(r.output.find("RLIMIT_NOFILE is 64"), std::string::npos)
        << r.output;
  }
  Outcome r =
      RunTool("client/deadconn", "--connections=300", true, "ulimit -n 64 && ");
  EXPECT_EQ(r.exit_code(), 1) << r.output;
  EXPECT_NE(r.output.find("at most 32 connections fit"), std::string::npos)
      << r.output;
}

TEST(BenchBinaryTest, RejectsBadFlags) {
  for (const char* args :
       {"--mode=nope", "--threads=0", "--host=bad%name", "--port=70000",
        "--port=0", "--duration=-1", "--size=0", "--rounds=-3",
        "--connections=0", "--requests=-1", "--timeout_ms=0", "--warmup=-1",
        "--path=nope", "stray_argument"}) {
    Outcome r = RunTool("client/bench", args);
    EXPECT_NE(r.exit_code(), 0) << args << ": " << r.output;
    // The message names what was wrong.
    const std::string name =
        std::string(args).substr(0, std::string(args).find('='));
    EXPECT_NE(r.output.find(std::string(absl::StripPrefix(name, "--"))),
              std::string::npos)
        << args << ": " << r.output;
  }
}

TEST(DeadconnBinaryTest, HoldsTheConnectionsItPromisesUntilSigint) {
  auto server = TestServer::Of<EchoHandler>();
  ChildServer deadconn;  // not a server, but the same launcher fits
  ASSERT_TRUE(
      deadconn
          .Start(RunfilePath("client/deadconn"),
                 {"--connections=300", absl::StrCat("--port=", server->port())},
                 "holding ([0-9]+)")
          .ok())
      << deadconn.output();
  EXPECT_EQ(deadconn.port(), 300) << "the number it says it holds";
  // Count them on the server side too.
  EXPECT_TRUE(server->WaitForConnections(300))
      << "server sees " << server->reactor().connection_count();
  absl::StatusOr<int> status = deadconn.StopWith(SIGINT, 10000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << deadconn.output();
  EXPECT_TRUE(server->WaitForConnections(0));
}

TEST(DeadconnBinaryTest, PartialRequestsAndSigterm) {
  auto server = TestServer::Of<SilentHandler>();
  ChildServer deadconn;
  ASSERT_TRUE(deadconn
                  .Start(RunfilePath("client/deadconn"),
                         {"--connections=50", "--partial_request",
                          absl::StrCat("--port=", server->port())},
                         "holding ([0-9]+)")
                  .ok())
      << deadconn.output();
  EXPECT_EQ(deadconn.port(), 50);
  EXPECT_TRUE(server->WaitForConnections(50));
  // Every connection sent the incomplete request (the Host header is the
  // --host value).
  client::DeadConnOptions o;
  o.host_header = "127.0.0.1";
  const size_t partial = client::DeadConnections(o).partial_request().size();
  EXPECT_TRUE(server->WaitForBytesRead(50 * partial))
      << server->reactor().Counters().bytes_read;
  absl::StatusOr<int> status = deadconn.StopWith(SIGTERM, 10000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << deadconn.output();
}

TEST(DeadconnBinaryTest, DurationEndsTheHold) {
  auto server = TestServer::Of<EchoHandler>();
  Outcome r = RunTool(
      "client/deadconn",
      absl::StrCat("--connections=20 --duration=0.2", Port(server->port())));
  EXPECT_EQ(r.exit_code(), 0) << r.output;
  EXPECT_NE(r.output.find("holding 20\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("closed 20 connections"), std::string::npos)
      << r.output;
}

TEST(DeadconnBinaryTest, ReportsConnectFailures) {
  RefusingPort refusing;
  Outcome r = RunTool(
      "client/deadconn",
      absl::StrCat("--connections=30 --duration=0.1", Port(refusing.port())));
  EXPECT_EQ(r.exit_code(), 1) << r.output;
  EXPECT_NE(r.output.find("30 of 30 connections failed; first: connect to "
                          "127.0.0.1:"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Connection refused"), std::string::npos);
  EXPECT_NE(r.output.find("holding 0"), std::string::npos);
}

TEST(DeadconnBinaryTest, RejectsBadFlags) {
  for (const char* args : {"--connections=0", "--duration=-1", "--port=0",
                           "--host=bad%name", "--timeout_ms=0"}) {
    Outcome r = RunTool("client/deadconn", args);
    EXPECT_NE(r.exit_code(), 0) << args << ": " << r.output;
  }
}

}  // namespace
}  // namespace baton::testing
