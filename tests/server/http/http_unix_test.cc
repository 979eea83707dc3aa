// //server:http on a Unix socket: a file from --root (sent with sendfile)
// arrives byte-exact, keep-alive requests on one connection, and the
// socket file is gone after SIGTERM. --defer_accept_seconds (TCP only, on
// by default) does not stop it from listening there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/util/test_client.h"
#include "tests/util/unix_socket.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectUnix;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;
using ::baton::testing::UnixTempDir;

constexpr char kUnixReady[] = "listening on unix:.* with ([0-9]+) threads";

TEST(HttpUnixTest, ServesAFileByteExactAndRemovesTheSocketOnExit) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string root = ::testing::TempDir();
  const std::string body = Pattern(5 << 20, 21);
  { std::ofstream(root + "/unix-body.bin", std::ios::binary) << body; }
  const std::string path = dir.Path("http.sock");
  ChildServer server;
  ASSERT_TRUE(
      server
          .Start(RunfilePath("server/http"),
                 {"--address=unix:" + path, "--threads=2", "--root=" + root},
                 kUnixReady)
          .ok())
      << server.output();
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  // Two requests on one connection: keep-alive, then close.
  ASSERT_TRUE(SendAll(fd, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  absl::StatusOr<std::string> head = ReadExact(fd, 12);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(*head, "HTTP/1.1 404");
  ASSERT_TRUE(SendAll(fd,
                      "GET /unix-body.bin HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n")
                  .ok());
  absl::StatusOr<std::string> rest = ReadToEof(fd);
  ASSERT_TRUE(rest.ok()) << rest.status();
  const size_t ok = rest->find("HTTP/1.1 200 OK\r\n");
  ASSERT_NE(ok, std::string::npos);
  EXPECT_NE(rest->find(absl::StrCat("Content-Length: ", body.size()), ok),
            std::string::npos);
  EXPECT_TRUE(absl::EndsWith(*rest, "\r\n\r\n" + body))
      << "got " << rest->size() << " bytes";
  ::close(fd);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
}

}  // namespace
}  // namespace baton
