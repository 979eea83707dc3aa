// //server:proxy with Unix sockets: relaying from TCP clients to a Unix
// upstream (a file path and an abstract name), listening on a Unix socket
// itself, a refused Unix upstream logged by its path, and --upstream's
// unix: text.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "baton/reactor.h"
#include "server/proxy_handler.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"
#include "tests/util/unix_socket.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::ConnectUnix;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::ReadToEof;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;
using ::baton::testing::UnixTempDir;

constexpr char kUnixReady[] = "listening on unix:.* with ([0-9]+) threads";

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

std::unique_ptr<Reactor> UnixEcho(const std::string& path) {
  auto echo = testing::StartReactor(testing::Threads(2));
  ListenOptions listen;
  listen.unix_path = path;
  absl::StatusOr<int> port =
      echo->Listen(listen, [] { return std::make_unique<Echo>(); });
  EXPECT_TRUE(port.ok()) << port.status();
  return echo;
}

void ExpectCleanExit(ChildServer* proxy) {
  absl::StatusOr<int> status = proxy->StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << proxy->output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy->output();
}

TEST(ProxyUnixTest, RelaysToAUnixUpstream) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  for (const std::string& upstream :
       {dir.Path("upstream.sock"), testing::AbstractName("upstream")}) {
    auto echo = UnixEcho(upstream);
    ChildServer proxy;
    ASSERT_TRUE(
        proxy
            .Start(RunfilePath("server/proxy"),
                   {"--port=0", "--threads=2", "--upstream=unix:" + upstream})
            .ok())
        << proxy.output();
    EXPECT_NE(proxy.output().find("(proxy to unix:" + upstream + ")"),
              std::string::npos)
        << proxy.output();
    for (int i = 0; i < 4; ++i) {
      const int fd = ConnectLoopback(proxy.port());
      ASSERT_GE(fd, 0);
      const absl::Status s = EchoRoundTrip(fd, Pattern(4 << 20, i));
      EXPECT_TRUE(s.ok()) << upstream << ": " << s;
      ::close(fd);
    }
    // Half-close passes through to the Unix upstream and back.
    const int fd = ConnectLoopback(proxy.port());
    ASSERT_GE(fd, 0);
    const std::string last = Pattern(100000, 99);
    ASSERT_TRUE(SendAll(fd, last).ok());
    ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
    absl::StatusOr<std::string> back = ReadToEof(fd);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(*back == last) << "got " << back->size() << " bytes";
    ::close(fd);
    ExpectCleanExit(&proxy);
  }
}

TEST(ProxyUnixTest, ListensOnAUnixSocketToAUnixUpstream) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  auto echo = UnixEcho(dir.Path("up.sock"));
  const std::string front = dir.Path("front.sock");
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--address=unix:" + front, "--threads=2",
                          "--upstream=unix:" + dir.Path("up.sock")},
                         kUnixReady)
                  .ok())
      << proxy.output();
  const int fd = ConnectUnix(front);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(2 << 20, 5)).ok());
  ::close(fd);
  ExpectCleanExit(&proxy);
}

TEST(ProxyUnixTest, LogsARefusedUnixUpstreamByItsPath) {
  UnixTempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string stale = dir.Path("nobody.sock");
  ASSERT_TRUE(testing::MakeStaleSocketFile(stale));
  ChildServer proxy;
  ASSERT_TRUE(
      proxy
          .Start(RunfilePath("server/proxy"),
                 {"--port=0", "--threads=1", "--upstream=unix:" + stale})
          .ok())
      << proxy.output();
  const int fd = ConnectLoopback(proxy.port());
  ASSERT_GE(fd, 0);
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed, not a reply
  ::close(fd);
  ExpectCleanExit(&proxy);
  EXPECT_NE(proxy.output().find("unix:" + stale), std::string::npos)
      << proxy.output();
  EXPECT_NE(proxy.output().find("Connection refused"), std::string::npos)
      << proxy.output();
}

TEST(ParseUpstreamTest, UnixPathAndAbstractName) {
  ConnectOptions o;
  o.port = 7;
  ASSERT_TRUE(proxy::ParseUpstream("unix:/run/up.sock", &o).ok());
  EXPECT_EQ(o.unix_path, "/run/up.sock");
  EXPECT_EQ(o.port, 0);
  ASSERT_TRUE(proxy::ParseUpstream("unix:@up", &o).ok());
  EXPECT_EQ(o.unix_path, "@up");
  EXPECT_EQ(proxy::ParseUpstream("unix:", &o).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton
