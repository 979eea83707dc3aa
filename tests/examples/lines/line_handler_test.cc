// The line protocol example (examples/lines/line_handler.h) on loopback:
// lines split anywhere, the request deadline, a complete line cancelling it,
// and an over-long line closed.
#include "examples/lines/line_handler.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::internal::ReactorTestPeer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::Eventually;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;

struct LineServer {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
  LineServer(absl::Duration timeout, size_t max_line = 1 << 20) {
    ReactorOptions options = testing::Threads(2);
    options.max_retained_input = max_line;
    reactor = testing::StartReactor(options);
    auto p = reactor->Listen(ListenOptions{}, [timeout] {
      return std::make_unique<examples::LineHandler>(timeout);
    });
    EXPECT_TRUE(p.ok());
    port = p.ok() ? *p : 0;
  }
};

TEST(LineHandlerTest, AnswersLinesSplitAnywhere) {
  LineServer server(absl::Seconds(60));
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  const std::string input = "hello\nbaton world\nx\n";
  uint64_t sent = 0;
  for (char c : input) {
    ASSERT_TRUE(SendAll(fd, std::string(1, c)).ok());
    ++sent;
    ASSERT_TRUE(Eventually(
        [&] { return server.reactor->Counters().bytes_read >= sent; }));
  }
  auto got = ReadExact(fd, input.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "HELLO\nBATON WORLD\nX\n");
  ::close(fd);
}

TEST(LineHandlerTest, IncompleteRequestTimesOut) {
  LineServer server(absl::Milliseconds(50));
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "done\nnever fin").ok());
  auto got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "DONE\nERR request timeout\n");
  ::close(fd);
}

// A completed request cancels its deadline: the deadline's timer is armed
// while the line is incomplete and gone from the reactor's timer queue once
// the line is answered; the connection is served on. (The deadline is long
// enough never to fall due here, so no stall can make it fire.)
TEST(LineHandlerTest, CompleteLineCancelsTheDeadline) {
  LineServer server(absl::Hours(1));
  Reactor& reactor = *server.reactor;
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReactorTestPeer::PendingTimers(reactor), 0u);
  ASSERT_TRUE(SendAll(fd, "a").ok());
  ASSERT_TRUE(
      Eventually([&] { return ReactorTestPeer::PendingTimers(reactor) == 1; }));
  ASSERT_TRUE(SendAll(fd, "b\n").ok());
  auto first = ReadExact(fd, 3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "AB\n");
  EXPECT_TRUE(
      Eventually([&] { return ReactorTestPeer::PendingTimers(reactor) == 0; }));
  ASSERT_TRUE(SendAll(fd, "cd\n").ok());
  auto second = ReadExact(fd, 3);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, "CD\n");
  ::close(fd);
}

TEST(LineHandlerTest, OverlongLineIsClosed) {
  LineServer server(absl::Seconds(60), /*max_line=*/4096);
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  (void)SendAll(fd, std::string(64 << 10, 'z'));
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
  }
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << errno;
  ::close(fd);
  EXPECT_TRUE(
      Eventually([&] { return server.reactor->connection_count() == 0; }));
}

}  // namespace
}  // namespace baton
