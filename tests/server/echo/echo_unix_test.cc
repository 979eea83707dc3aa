// //server:echo on a Unix socket (--address=unix:/path and unix:@name):
// every byte back over many connections, the socket file's mode and its
// removal on exit, a stale file replaced, --port refused with a unix
// address.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/util/test_client.h"
#include "tests/util/unix_socket.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectUnix;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;
using ::baton::testing::UnixTempDir;

// A unix listener has no port: the ready line's thread count stands in.
constexpr char kUnixReady[] = "listening on unix:.* with ([0-9]+) threads";

const std::string& EchoBinary() {
  static const std::string path = RunfilePath("server/echo");
  return path;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

void ExpectCleanExit(ChildServer* server) {
  absl::StatusOr<int> status = server->StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << status.status() << "\n" << server->output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server->output();
}

void ManyConnectionsEcho(const std::string& path) {
  constexpr int kConnections = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectUnix(path);
      if (fd < 0) {
        ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
        failures.fetch_add(1);
        return;
      }
      for (const size_t size : {size_t{64}, size_t{16} << 10, size_t{300000}}) {
        const absl::Status s = EchoRoundTrip(fd, Pattern(size, c + size));
        if (!s.ok()) {
          ADD_FAILURE() << "connection " << c << ", " << size
                        << " bytes: " << s;
          failures.fetch_add(1);
          break;
        }
      }
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(EchoUnixTest, PathEchoesModeAppliedFileRemovedOnExit) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("echo.sock");
  ChildServer server;
  ASSERT_TRUE(
      server
          .Start(EchoBinary(),
                 {"--address=unix:" + path, "--unix_mode=0600", "--threads=2"},
                 kUnixReady)
          .ok())
      << server.output();
  EXPECT_NE(server.output().find("listening on unix:" + path),
            std::string::npos)
      << server.output();
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ManyConnectionsEcho(path);
  ExpectCleanExit(&server);
  EXPECT_FALSE(Exists(path));
}

TEST(EchoUnixTest, AbstractName) {
  const std::string name = testing::AbstractName("echo-binary");
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(EchoBinary(),
                         {"--address=unix:" + name, "--threads=2"}, kUnixReady)
                  .ok())
      << server.output();
  ManyConnectionsEcho(name);
  ExpectCleanExit(&server);
}

TEST(EchoUnixTest, StaleFileFromACrashedRunIsReplaced) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("crashed.sock");
  {
    // A server killed with SIGKILL leaves its socket file behind.
    ChildServer crashed;
    ASSERT_TRUE(crashed
                    .Start(EchoBinary(),
                           {"--address=unix:" + path, "--threads=1"},
                           kUnixReady)
                    .ok())
        << crashed.output();
    absl::StatusOr<int> status = crashed.StopWith(SIGKILL, 20000);
    ASSERT_TRUE(status.ok());
  }
  ASSERT_TRUE(Exists(path));
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(EchoBinary(),
                         {"--address=unix:" + path, "--threads=1"}, kUnixReady)
                  .ok())
      << server.output();
  const int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, "after a crash").ok());
  ::close(fd);

  // A second server on the live path is refused and leaves it alone.
  ChildServer second;
  EXPECT_FALSE(second
                   .Start(EchoBinary(),
                          {"--address=unix:" + path, "--threads=1"}, kUnixReady)
                   .ok());
  EXPECT_NE(second.output().find("another socket is listening there"),
            std::string::npos)
      << second.output();
  const int again = ConnectUnix(path);
  ASSERT_GE(again, 0);
  EXPECT_TRUE(EchoRoundTrip(again, "still here").ok());
  ::close(again);
  ExpectCleanExit(&server);
}

TEST(EchoUnixTest, PortWithAUnixAddressIsRefused) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  ChildServer server;
  ASSERT_FALSE(server
                   .Start(EchoBinary(),
                          {"--address=unix:" + dir.Path("p.sock"), "--port=0"},
                          kUnixReady)
                   .ok());
  absl::StatusOr<int> status = server.WaitExit(20000);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << server.output();
  EXPECT_NE(server.output().find("a Unix socket has no port"),
            std::string::npos)
      << server.output();
  EXPECT_FALSE(Exists(dir.Path("p.sock")));
}

TEST(EchoUnixTest, UnixModeWithoutAUnixAddressIsRefused) {
  ChildServer server;
  ASSERT_FALSE(
      server.Start(EchoBinary(), {"--port=0", "--unix_mode=0600"}).ok());
  absl::StatusOr<int> status = server.WaitExit(20000);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << server.output();
  EXPECT_NE(server.output().find("--unix_mode needs a --address=unix:/path"),
            std::string::npos)
      << server.output();
}

}  // namespace
}  // namespace baton
