// The //server:proxy binary end to end: bytes through it to an in-process
// echo, a log line when the upstream refuses, host names for --upstream and
// --address (a listen name that does not resolve refused at start), and
// SIGTERM: a transfer under way finishes,
// or, past --drain_timeout_ms, is cut with a reset; exit 0 either way.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"
#include "tests/util/test_dns_server.h"

namespace baton {
namespace {

using ::baton::testing::BoundNotListening;
using ::baton::testing::ChildServer;
using ::baton::testing::ConnectErrno;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Eventually;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::RunfilePath;
using ::baton::testing::SendAll;

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
  EXPECT_FALSE(proxy
                   .Start(RunfilePath("server/proxy"),
                          {"--port=0", "--upstream=nowhere"})
                   .ok());
}

// An upstream given by name (localhost, through /etc/hosts) is looked up
// for each client and relayed to; the listen --address takes a name too.
TEST(ProxyBinaryTest, RelaysToAnUpstreamGivenByName) {
  auto echo = testing::StartReactor(testing::Threads(2));
  auto echo_port =
      echo->Listen(ListenOptions{}, [] { return std::make_unique<Echo>(); });
  ASSERT_TRUE(echo_port.ok());
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--port=0", "--threads=2", "--address=localhost",
                          "--upstream=localhost:" + std::to_string(*echo_port)})
                  .ok())
      << proxy.output();
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(proxy.port());
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(EchoRoundTrip(fd, Pattern(100000, i)).ok());
    ::close(fd);
  }
  auto status = proxy.StopWith(SIGTERM, 20000);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("upstream failures 0"), std::string::npos)
      << proxy.output();
}

// A listen --address that does not resolve is an error at start (exit 2,
// with the name in the message), not a server listening somewhere else.
TEST(ProxyBinaryTest, RefusesAListenAddressThatDoesNotResolve) {
  testing::TestDnsServer dns;  // NXDOMAIN for every name
  ChildServer proxy;
  const absl::Status started =
      proxy.Start(RunfilePath("server/proxy"),
                  {"--port=0", "--address=nosuch.test",
                   "--upstream=127.0.0.1:9", "--dns_servers=" + dns.servers()});
  ASSERT_FALSE(started.ok()) << proxy.output();
  auto status = proxy.WaitExit(20000);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << proxy.output();
  EXPECT_NE(proxy.output().find("resolve nosuch.test"), std::string::npos)
      << proxy.output();
  EXPECT_GE(dns.queries("nosuch.test"), 1);
  EXPECT_EQ(proxy.output().find("listening"), std::string::npos)
      << proxy.output();
}

// An upstream the test drives by hand: it accepts one connection and sends
// `payload` on it, then closes it if `close_after`. Connections after the
// first (a probe that reached the proxy before it stopped accepting) are
// closed once the payload is sent, so their pairs end too.
class SendingUpstream {
 public:
  SendingUpstream(std::string payload, bool close_after)
      : payload_(std::move(payload)), close_after_(close_after) {
    listener_ = BoundNotListening(&port_);
    EXPECT_EQ(::listen(listener_, 16), 0);
    thread_ = std::thread([this] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      fd_.store(fd);
      (void)SendAll(fd, payload_);  // fails if the proxy cuts the pair
      if (close_after_) ::shutdown(fd, SHUT_WR);
      for (;;) {  // until the destructor shuts the listener
        const int extra = ::accept(listener_, nullptr, nullptr);
        if (extra < 0) return;
        ::close(extra);
      }
    });
  }
  // Unblocks the thread (accept or send) and joins it.
  ~SendingUpstream() {
    ::shutdown(listener_, SHUT_RDWR);
    if (fd_.load() >= 0) ::shutdown(fd_.load(), SHUT_RDWR);
    thread_.join();
    if (fd_.load() >= 0) ::close(fd_.load());
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  const std::string payload_;
  const bool close_after_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> fd_{-1};
  std::thread thread_;
};

// Reads until the stream ends; true for EOF, false for a reset or error.
bool ReadsToEof(int fd, std::string* got, int* error) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      got->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    *error = errno;
    return false;
  }
}

// SIGTERM while the upstream is sending 32 MB that the client has barely
// started to read: the proxy stops accepting, and the pair goes on until
// the client has every byte and the upstream's EOF; then the proxy exits 0
// having cut nothing.
TEST(ProxyBinaryTest, SigtermLetsATransferFinish) {
  const std::string payload = Pattern(32 << 20, 7);
  SendingUpstream upstream(payload, /*close_after=*/true);
  ChildServer proxy;
  ASSERT_TRUE(
      proxy
          .Start(RunfilePath("server/proxy"),
                 {"--port=0", "--threads=2", "--drain_timeout_ms=120000",
                  "--upstream=127.0.0.1:" + std::to_string(upstream.port())})
          .ok())
      << proxy.output();
  const int fd = ConnectLoopback(proxy.port(), 60000);
  ASSERT_GE(fd, 0);
  auto first = ReadExact(fd, 1 << 10);  // the transfer is under way
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(::kill(proxy.pid(), SIGTERM), 0);
  // It stops accepting...
  EXPECT_TRUE(Eventually(
      [&] { return ConnectErrno(proxy.port()) == ECONNREFUSED; }, 60000));
  // ...but the transfer goes on to its end.
  std::string rest;
  int error = 0;
  EXPECT_TRUE(ReadsToEof(fd, &rest, &error)) << std::strerror(error);
  ::close(fd);
  EXPECT_EQ(first->size() + rest.size(), payload.size());
  EXPECT_TRUE(*first + rest == payload);
  auto status = proxy.WaitExit(60000);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("every pair finished"), std::string::npos)
      << proxy.output();
}

// With --drain_timeout_ms=0 the pair still in transfer is cut at once: the
// client's stream ends in a reset, not a FIN that would read as complete,
// and the proxy logs the cut.
TEST(ProxyBinaryTest, SigtermCutsWhatIsLeftWithAReset) {
  const std::string payload = Pattern(32 << 20, 8);
  SendingUpstream upstream(payload, /*close_after=*/false);
  ChildServer proxy;
  ASSERT_TRUE(
      proxy
          .Start(RunfilePath("server/proxy"),
                 {"--port=0", "--threads=2", "--drain_timeout_ms=0",
                  "--upstream=127.0.0.1:" + std::to_string(upstream.port())})
          .ok())
      << proxy.output();
  const int fd = ConnectLoopback(proxy.port(), 60000);
  ASSERT_GE(fd, 0);
  auto first = ReadExact(fd, 1 << 10);  // the transfer is under way
  ASSERT_TRUE(first.ok()) << first.status();
  auto status = proxy.StopWith(SIGTERM, 60000);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("cut 1 pairs"), std::string::npos)
      << proxy.output();
  std::string rest;
  int error = 0;
  EXPECT_FALSE(ReadsToEof(fd, &rest, &error)) << "a FIN after a cut";
  EXPECT_EQ(error, ECONNRESET) << std::strerror(error);
  EXPECT_LT(first->size() + rest.size(), payload.size());
  EXPECT_TRUE(*first + rest == payload.substr(0, first->size() + rest.size()));
  ::close(fd);
}

}  // namespace
}  // namespace baton
