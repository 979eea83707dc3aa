// End-to-end tests of the //server:echo binary: started as a child process on
// a free loopback port, loaded by 80 client connections, stopped by SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
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
      << "counters summary missing:\n"
      << server.output();
  ::close(idle);
}

// --address takes a host name, looked up at start (localhost: /etc/hosts).
TEST(EchoServerTest, ListensOnAHostName) {
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(EchoBinary(),
                         {"--port=0", "--threads=1", "--address=localhost"})
                  .ok())
      << server.output();
  const int fd = ConnectLoopback(server.port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(10000, 1)).ok());
  ::close(fd);
  EXPECT_NE(server.output().find("--address=localhost: listening on 127.0.0.1"),
            std::string::npos)
      << server.output();
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 5000);
  ASSERT_TRUE(status.ok()) << status.status();
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
                      BadFlag{"--address=bad name", "neither an IPv4 or IPv6"},
                      BadFlag{"--threads=-3", "0..1024"},
                      BadFlag{"--max_events=0", "1..4096"},
                      BadFlag{"--idle_timeout_ms=-5", "must not be negative"},
                      BadFlag{"--no_such_flag=1", "no_such_flag"},
                      // The benchmark's slow rule is only in
                      // //server/compare:baton_echo, not in the product.
                      BadFlag{"--slow_us=1000", "slow_us"}));

// CPU ticks (user + system) the process has used so far.
long CpuTicks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the ")" of the command name; utime and stime are 14 and 15.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// With only 32 descriptors the server runs out while clients keep
// connecting: it must shed them without spinning, and serve again once
// descriptors are free.
TEST(EchoServerTest, DescriptorExhaustionBacksOffAndRecovers) {
  ChildServer server;
  ASSERT_TRUE(server
                  .Start("/usr/bin/prlimit", {"--nofile=32", EchoBinary(),
                                              "--port=0", "--threads=1"})
                  .ok())
      << server.output();
  std::vector<int> clients;
  for (int i = 0; i < 60; ++i) {
    const int fd = ConnectLoopback(server.port(), 2000);
    if (fd >= 0) clients.push_back(fd);
  }
  const long before = CpuTicks(server.pid());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long used = CpuTicks(server.pid()) - before;
  // A busy loop on EMFILE would burn ~100 ticks in that second.
  EXPECT_LT(used, 30) << "server spins while out of descriptors";
  for (int fd : clients) ::close(fd);
  // Recovered: a new client is served.
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    const int fd = ConnectLoopback(server.port(), 2000);
    served = fd >= 0 && EchoRoundTrip(fd, "after exhaustion").ok();
    if (fd >= 0) ::close(fd);
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(served) << server.output();
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 5000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST(EchoServerTest, PortInUseIsReported) {
  ChildServer first;
  ASSERT_TRUE(first.Start(EchoBinary(), {"--port=0", "--threads=1"}).ok());
  ChildServer second;
  EXPECT_FALSE(
      second
          .Start(EchoBinary(),
                 {"--port=" + std::to_string(first.port()), "--threads=1"})
          .ok());
  second.WaitExit(5000).IgnoreError();
  EXPECT_NE(second.output().find("cannot listen"), std::string::npos)
      << second.output();
}

}  // namespace
}  // namespace baton
