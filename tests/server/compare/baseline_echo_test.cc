// End-to-end tests of the comparison servers (Asio, poll, select, thread per
// connection): the harness only means something if they echo correctly too.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
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
using ::baton::testing::ReadToEof;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;

class BaselineEchoTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BaselineEchoTest, EchoesEveryByteHalfClosesAndStopsOnSigterm) {
  ChildServer server;
  // "binary [--extra-flag]"
  const size_t space = GetParam().find(' ');
  std::vector<std::string> args = {"--port=0", "--threads=2"};
  if (space != std::string::npos) args.push_back(GetParam().substr(space + 1));
  const std::string binary =
      RunfilePath("server/compare/" + GetParam().substr(0, space));
  ASSERT_TRUE(server.Start(binary, args).ok()) << server.output();
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 20; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(server.port());
      for (size_t size :
           {size_t{1}, size_t{64}, size_t{16384}, size_t{1} << 20}) {
        if (fd < 0 || !EchoRoundTrip(fd, Pattern(size, c + size)).ok()) {
          failures.fetch_add(1);
          break;
        }
      }
      if (fd >= 0) ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);

  // Half-close: everything sent comes back, then EOF.
  const int fd = ConnectLoopback(server.port());
  const std::string payload = Pattern(500000, 99);
  std::thread writer([&] {
    EXPECT_TRUE(SendAll(fd, payload).ok());
    ::shutdown(fd, SHUT_WR);
  });
  absl::StatusOr<std::string> got = ReadToEof(fd);
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload);
  ::close(fd);

  absl::StatusOr<int> status = server.StopWith(SIGTERM, 5000);
  ASSERT_TRUE(status.ok()) << status.status() << server.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << server.output();
}

INSTANTIATE_TEST_SUITE_P(Servers, BaselineEchoTest,
                         ::testing::Values("asio_echo",
                                           "asio_echo --io_contexts=per_thread",
                                           "reuseport_echo", "poll_echo",
                                           "select_echo", "thread_echo"));

}  // namespace
}  // namespace baton
