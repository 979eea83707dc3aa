// //server/compare:asio_echo on a Unix socket (asio::local::stream_protocol)
// in both threading models, against which baton's echo is benchmarked over
// Unix sockets: every byte back over many connections, the socket file
// removed on exit. The TCP-only comparison servers refuse a unix address.
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

constexpr char kUnixReady[] = "listening on unix:.* with ([0-9]+) threads";

class AsioUnixTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AsioUnixTest, EchoesEveryByteAndRemovesTheFileOnExit) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.Path("asio.sock");
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/compare/asio_echo"),
                         {"--address=unix:" + path, "--threads=2",
                          std::string("--io_contexts=") + GetParam()},
                         kUnixReady)
                  .ok())
      << server.output();
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 20; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectUnix(path);
      if (fd < 0) {
        ADD_FAILURE() << "connect: " << std::strerror(errno);
        failures.fetch_add(1);
        return;
      }
      for (const size_t size : {size_t{13}, size_t{200000}}) {
        const absl::Status s = EchoRoundTrip(fd, Pattern(size, c));
        if (!s.ok()) {
          ADD_FAILURE() << "connection " << c << ": " << s;
          failures.fetch_add(1);
          break;
        }
      }
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << status.status() << server.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

TEST_P(AsioUnixTest, AbstractName) {
  const std::string name = testing::AbstractName(GetParam());
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/compare/asio_echo"),
                         {"--address=unix:" + name, "--threads=2",
                          std::string("--io_contexts=") + GetParam()},
                         kUnixReady)
                  .ok())
      << server.output();
  const int fd = ConnectUnix(name);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(100000, 1)).ok());
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(IoContexts, AsioUnixTest,
                         ::testing::Values("shared", "per_thread"));

TEST(TcpOnlyComparisonServersTest, RefuseAUnixAddress) {
  for (const char* name : {"poll_echo", "reuseport_echo"}) {
    ChildServer server;
    EXPECT_FALSE(server
                     .Start(RunfilePath(std::string("server/compare/") + name),
                            {"--address=unix:/tmp/never.sock"}, kUnixReady)
                     .ok());
    EXPECT_NE(server.output().find("listens on TCP only"), std::string::npos)
        << name << ": " << server.output();
  }
}

}  // namespace
}  // namespace baton
