// End-to-end tests of the //server:http binary: flags, files, SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
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
  const std::string r =
      Fetch(server.port(), "GET / HTTP/1.0\r\n\r\n");
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

TEST(HttpBinaryTest, BadFlagsExitNonZero) {
  for (const char* flag : {"--root=/no/such/dir", "--response_size=-2",
                           "--port=99999", "--keepalive_timeout_ms=0"}) {
    ChildServer server;
    EXPECT_FALSE(server.Start(RunfilePath("server/http"), {flag}).ok())
        << flag;
    absl::StatusOr<int> status = server.WaitExit(5000);
    ASSERT_TRUE(status.ok()) << flag;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << flag;
  }
}

}  // namespace
}  // namespace baton
