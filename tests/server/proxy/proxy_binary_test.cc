// The //server:proxy binary end to end: bytes through it to an in-process
// echo, a log line when the upstream refuses, SIGTERM drains and exits 0.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

TEST(ProxyBinaryTest, RelaysAndDrainsOnSigterm) {
  auto echo = testing::StartReactor(testing::Threads(2));
  auto echo_port =
      echo->Listen(ListenOptions{}, [] { return std::make_unique<Echo>(); });
  ASSERT_TRUE(echo_port.ok());
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--port=0", "--threads=2",
                          "--upstream=127.0.0.1:" + std::to_string(*echo_port)})
                  .ok())
      << proxy.output();
  for (int i = 0; i < 4; ++i) {
    const int fd = ConnectLoopback(proxy.port());
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(EchoRoundTrip(fd, Pattern(1 << 20, i)).ok());
    ::close(fd);
  }
  auto status = proxy.StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("draining"), std::string::npos);
}

TEST(ProxyBinaryTest, LogsARefusedUpstream) {
  int port = 0;
  const int reserved = testing::BoundNotListening(&port);
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--port=0", "--threads=1",
                          "--upstream=127.0.0.1:" + std::to_string(port)})
                  .ok())
      << proxy.output();
  const int fd = ConnectLoopback(proxy.port());
  ASSERT_GE(fd, 0);
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed, not a reply
  ::close(fd);
  auto status = proxy.StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(proxy.output().find("upstream 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << proxy.output();
  ::close(reserved);
}

TEST(ProxyBinaryTest, RejectsABadUpstream) {
  ChildServer proxy;
  EXPECT_FALSE(proxy.Start(RunfilePath("server/proxy"),
                           {"--port=0", "--upstream=nowhere"})
                   .ok());
}

}  // namespace
}  // namespace baton
