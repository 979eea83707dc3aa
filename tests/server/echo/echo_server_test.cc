// End-to-end tests of the //server:echo binary: started as a child process on
// a free loopback port, loaded by 80 client connections, stopped by SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;

const std::string& EchoBinary() {
  static const std::string path = RunfilePath("server/echo");
  return path;
}

TEST(EchoServerTest, EightyConnectionsGetEveryByteBackAndSigtermExitsZero) {
  ChildServer server;
  ASSERT_TRUE(server.Start(EchoBinary(), {"--port=0", "--threads=2"}).ok())
      << server.output();
  constexpr int kConnections = 80;
  const std::vector<size_t> sizes = {64, 16 << 10, 200000};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(server.port());
      if (fd < 0) {
        failures.fetch_add(1);
        return;
      }
      for (size_t i = 0; i < sizes.size(); ++i) {
        const absl::Status s = EchoRoundTrip(fd, Pattern(sizes[i], c * 7 + i));
        if (!s.ok()) {
          ADD_FAILURE() << "connection " << c << ", " << sizes[i]
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

  // An idle connection stays open across the signal: Stop must close it.
  const int idle = ConnectLoopback(server.port());
  ASSERT_GE(idle, 0);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 5000);
  ASSERT_TRUE(status.ok()) << status.status() << "\n" << server.output();
  EXPECT_TRUE(WIFEXITED(*status)) << server.output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << server.output();
  EXPECT_NE(server.output().find("stopped;"), std::string::npos)
      << "counters summary missing:\n" << server.output();
  ::close(idle);
}

TEST(EchoServerTest, SigintAlsoStopsGracefully) {
  ChildServer server;
  ASSERT_TRUE(server.Start(EchoBinary(), {"--port=0", "--threads=1"}).ok());
  const int fd = ConnectLoopback(server.port());
  ASSERT_TRUE(EchoRoundTrip(fd, "ping").ok());
  absl::StatusOr<int> status = server.StopWith(SIGINT, 5000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  ::close(fd);
}

struct BadFlag {
  std::string flag;
  std::string message;  // part of what the user must be told
};

void PrintTo(const BadFlag& f, std::ostream* os) { *os << f.flag; }

class EchoServerBadFlagTest : public ::testing::TestWithParam<BadFlag> {};

TEST_P(EchoServerBadFlagTest, ExitsNonZeroWithAClearMessage) {
  ChildServer server;
  const absl::Status started = server.Start(EchoBinary(), {GetParam().flag});
  EXPECT_FALSE(started.ok()) << "server accepted " << GetParam().flag;
  absl::StatusOr<int> status = server.WaitExit(5000);
  if (status.ok()) {
    EXPECT_TRUE(WIFEXITED(*status));
    EXPECT_NE(WEXITSTATUS(*status), 0);
  }
  EXPECT_NE(server.output().find(GetParam().message), std::string::npos)
      << server.output();
}

INSTANTIATE_TEST_SUITE_P(
    Flags, EchoServerBadFlagTest,
    ::testing::Values(BadFlag{"--port=70000", "0..65535"},
                      BadFlag{"--port=-1", "0..65535"},
                      BadFlag{"--address=example.com", "not an IPv4 or IPv6"},
                      BadFlag{"--threads=-3", "0..1024"},
                      BadFlag{"--max_events=0", "1..4096"},
                      BadFlag{"--idle_timeout_ms=-5", "must not be negative"},
                      BadFlag{"--no_such_flag=1", "no_such_flag"}));

TEST(EchoServerTest, PortInUseIsReported) {
  ChildServer first;
  ASSERT_TRUE(first.Start(EchoBinary(), {"--port=0", "--threads=1"}).ok());
  ChildServer second;
  EXPECT_FALSE(second
                   .Start(EchoBinary(), {"--port=" + std::to_string(
                                                         first.port()),
                                         "--threads=1"})
                   .ok());
  second.WaitExit(5000).IgnoreError();
  EXPECT_NE(second.output().find("cannot listen"), std::string::npos)
      << second.output();
}

}  // namespace
}  // namespace baton
