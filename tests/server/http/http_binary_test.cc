// End-to-end tests of the //server:http binary: flags, files, SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;

std::string Fetch(int port, const std::string& request) {
  const int fd = ConnectLoopback(port);
  EXPECT_TRUE(SendAll(fd, request).ok());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ::close(fd);
  return got.ok() ? *got : "";
}

TEST(HttpBinaryTest, FixedSizeModeAndGracefulStop) {
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=2", "--response_size=128"})
                  .ok())
      << server.output();
  const std::string r = Fetch(server.port(), "GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200 OK")) << r;
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\n" + std::string(128, 'x')));
  // An idle keep-alive connection must not hold up the stop.
  const int idle = ConnectLoopback(server.port());
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 5000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  ::close(idle);
}

TEST(HttpBinaryTest, ServesItsRootDirectory) {
  const std::string root = ::testing::TempDir();
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=1", "--root=" + root})
                  .ok())
      << server.output();
  const std::string r = Fetch(
      server.port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StrContains(r, "Index of /")) << r;
}

// SIGTERM while a 20 MB file is half sent and a keep-alive connection sits
// idle: the idle one is closed at once, the download completes byte-exact,
// then the server exits 0.
TEST(HttpBinaryTest, SigtermDrainsRunningTransfers) {
  const std::string root = ::testing::TempDir() + "/drain_root";
  ::mkdir(root.c_str(), 0755);
  const std::string big = Pattern(20 << 20, 3);
  {
    std::ofstream out(root + "/big.bin", std::ios::binary);
    out << big;
  }
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=2", "--root=" + root,
                          "--drain_timeout_ms=20000"})
                  .ok())
      << server.output();
  const int idle = ConnectLoopback(server.port());
  ASSERT_TRUE(SendAll(idle,
                      "GET /big.bin HTTP/1.1\r\nHost: x\r\n"
                      "Range: bytes=0-9\r\n\r\n")
                  .ok());
  std::string head;
  char buf[4096];
  while (!absl::EndsWith(head, big.substr(0, 10))) {
    const ssize_t n = ::recv(idle, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << head;
    head.append(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(absl::StartsWith(head, "HTTP/1.1 206")) << head;
  const int busy = ConnectLoopback(server.port(), 20000);
  ASSERT_TRUE(SendAll(busy, "GET /big.bin HTTP/1.0\r\n\r\n").ok());
  absl::StatusOr<std::string> start = ReadExact(busy, 4096);
  ASSERT_TRUE(start.ok()) << start.status();

  absl::StatusOr<int> status = absl::UnknownError("not stopped");
  std::thread stopper([&] { status = server.StopWith(SIGTERM, 30000); });
  absl::StatusOr<std::string> idle_rest = ReadToEof(idle);
  ASSERT_TRUE(idle_rest.ok()) << idle_rest.status();
  EXPECT_TRUE(idle_rest->empty());
  absl::StatusOr<std::string> rest = ReadToEof(busy);
  ASSERT_TRUE(rest.ok()) << rest.status();
  const std::string response = *start + *rest;
  const size_t body = response.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_TRUE(response.compare(body + 4, std::string::npos, big) == 0)
      << "body of " << response.size() - body - 4 << " bytes";
  stopper.join();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  EXPECT_TRUE(absl::StrContains(server.output(), "0 connections left"))
      << server.output();
  ::close(idle);
  ::close(busy);
}

// A client that never reads cannot hold the stop hostage: at the drain
// deadline its connection is cut and the server still exits 0 (under ASan,
// with leak checking, in CI).
TEST(HttpBinaryTest, DrainDeadlineCutsAStalledDownload) {
  const std::string root = ::testing::TempDir() + "/cut_root";
  ::mkdir(root.c_str(), 0755);
  {
    std::ofstream out(root + "/big.bin", std::ios::binary);
    out << Pattern(32 << 20, 4);
  }
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=2", "--root=" + root,
                          "--drain_timeout_ms=300"})
                  .ok())
      << server.output();
  const int stalled = ConnectLoopback(server.port());
  ASSERT_TRUE(SendAll(stalled, "GET /big.bin HTTP/1.0\r\n\r\n").ok());
  ASSERT_TRUE(ReadExact(stalled, 100).ok());
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 10000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  EXPECT_TRUE(absl::StrContains(server.output(), "1 connections left to cut"))
      << server.output();
  ::close(stalled);
}

// Each bad value is refused at start with a message naming it.
TEST(HttpBinaryTest, BadFlagsExitNonZero) {
  for (const char* flag :
       {"--root=/no/such/dir", "--response_size=-2", "--port=99999",
        "--keepalive_timeout_ms=0", "--request_timeout_ms=0",
        "--request_timeout_ms=3600001", "--body_timeout_ms=0",
        "--body_timeout_ms=9223372036854775807", "--max_body_bytes=-1",
        "--max_body_bytes=1099511627777"}) {
    ChildServer server;
    EXPECT_FALSE(server.Start(RunfilePath("server/http"), {flag}).ok()) << flag;
    absl::StatusOr<int> status = server.WaitExit(5000);
    ASSERT_TRUE(status.ok()) << flag;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << flag;
    EXPECT_TRUE(absl::StrContains(server.output(), absl::StrCat(flag, ": ")))
        << server.output();
  }
}

// --max_body_bytes and --body_timeout_ms reach the server: a body over
// the bound is refused at once (413), one that stops coming is 408.
TEST(HttpBinaryTest, BodyFlagsBoundRequestBodies) {
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=1", "--response_size=5",
                          "--max_body_bytes=10", "--body_timeout_ms=200"})
                  .ok())
      << server.output();
  std::string r = Fetch(server.port(),
                        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 11"
                        "\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413 ")) << r;
  r = Fetch(server.port(),
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
            "0123456789");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200 ")) << r;
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\nxxxxx")) << r;
  r = Fetch(server.port(),
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
            "01234");
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 408 ")) << r;
}

}  // namespace
}  // namespace baton
