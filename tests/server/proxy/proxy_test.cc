// The proxy's handlers (server/proxy_handler.h) in process, on loopback:
// 10 MB each way byte-exact, a slow reader on either side with the proxy's
// memory bounded, half-close passed on both ways, an upstream that refuses
// or resets mid-transfer, and 1,000 concurrent proxied connections.
//
// "Memory" is measured exactly, without timing: the bytes the proxy holds
// in user space are its bytes_read minus its bytes_written.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/reactor.h"
#include "server/proxy_handler.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::BoundNotListening;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Eventually;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::SendAll;
using ::baton::testing::StartReactor;
using ::baton::testing::Threads;

constexpr size_t kHighWater = 256 << 10;

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// A proxy reactor in front of `upstream_port`.
struct Proxy {
  proxy::ProxyConfig config;
  std::unique_ptr<Reactor> reactor;
  int port = 0;
  explicit Proxy(int upstream_port, int threads = 2) {
    config.upstream.address = "127.0.0.1";
    config.upstream.port = upstream_port;
    config.upstream.timeout = absl::Seconds(10);
    config.high_water = kHighWater;
    ReactorOptions options = Threads(threads);
    options.output_high_water = size_t{1} << 40;  // as //server:proxy
    options.max_connections = 4000;
    reactor = StartReactor(options);
    auto p = reactor->Listen(ListenOptions{},
                             proxy::ClientFactory(reactor.get(), &config));
    EXPECT_TRUE(p.ok());
    port = p.ok() ? *p : 0;
  }
  // Bytes read and not yet written: what the proxy holds in memory.
  int64_t held() const {
    const ReactorCounters c = reactor->Counters();
    return static_cast<int64_t>(c.bytes_read) -
           static_cast<int64_t>(c.bytes_written);
  }
};

// The most the proxy may hold per direction: the high-water mark, plus one
// read's worth (the read that crossed it), plus a read in flight on the
// other side.
constexpr int64_t kBound = kHighWater + 2 * (64 << 10);

struct EchoServer {
  std::unique_ptr<Reactor> reactor = StartReactor(Threads(2));
  int port = *reactor->Listen(ListenOptions{},
                              [] { return std::make_unique<Echo>(); });
};

// A plain listening socket the test drives by hand as the upstream.
struct RawUpstream {
  int listener = -1;
  int port = 0;
  RawUpstream() {
    listener = BoundNotListening(&port);
    EXPECT_EQ(::listen(listener, 1024), 0);
  }
  int Accept() {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd >= 0) {
      timeval tv = {20, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
  }
  ~RawUpstream() { ::close(listener); }
};

// Reads until EOF or a reset; true unless it timed out.
bool ReadsToEndOrReset(int fd, std::string* got) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      got->append(buf, n);
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

TEST(ProxyTest, TenMegabytesEachWayByteExact) {
  EchoServer echo;
  Proxy proxy(echo.port);
  const int fd = ConnectLoopback(proxy.port, 30000);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(10 << 20, 11)).ok());
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

// One side sends 16 MB while the other reads nothing for a while: the
// proxy must stop reading from the sender near the high-water mark.
void ExpectBoundedWhileTheReaderIsIdle(bool slow_client, uint32_t seed) {
  RawUpstream upstream;
  Proxy proxy(upstream.port);
  const int client = ConnectLoopback(proxy.port, 30000);
  ASSERT_GE(client, 0);
  const int up = upstream.Accept();
  ASSERT_GE(up, 0);
  const int sender_fd = slow_client ? up : client;
  const int reader_fd = slow_client ? client : up;
  const std::string payload = Pattern(16 << 20, seed);
  std::thread sender([&] { EXPECT_TRUE(SendAll(sender_fd, payload).ok()); });
  // While the reader does not read, sample what the proxy holds.
  for (int i = 0; i < 200; ++i) {
    ASSERT_LE(proxy.held(), kBound) << "sample " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto got = ReadExact(reader_fd, payload.size());
  sender.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload);
  ::close(up);
  ::close(client);
}

TEST(ProxyTest, SlowClientBoundsMemory) {
  ExpectBoundedWhileTheReaderIsIdle(/*slow_client=*/true, 21);
}

TEST(ProxyTest, SlowUpstreamBoundsMemory) {
  ExpectBoundedWhileTheReaderIsIdle(/*slow_client=*/false, 22);
}

// Client -> upstream EOF first: the upstream sees the request and EOF, then
// answers and closes; the client gets the whole answer, then EOF.
TEST(ProxyTest, HalfCloseFromTheClient) {
  RawUpstream upstream;
  Proxy proxy(upstream.port);
  const int client = ConnectLoopback(proxy.port);
  ASSERT_GE(client, 0);
  const int up = upstream.Accept();
  ASSERT_GE(up, 0);
  const std::string request = Pattern(300000, 31);
  ASSERT_TRUE(SendAll(client, request).ok());
  ASSERT_EQ(::shutdown(client, SHUT_WR), 0);
  std::string at_upstream;
  ASSERT_TRUE(ReadsToEndOrReset(up, &at_upstream));
  EXPECT_TRUE(at_upstream == request);  // then EOF: half-close passed on
  const std::string answer = Pattern(500000, 32);
  ASSERT_TRUE(SendAll(up, answer).ok());  // still open the other way
  ::close(up);
  std::string at_client;
  ASSERT_TRUE(ReadsToEndOrReset(client, &at_client));
  EXPECT_TRUE(at_client == answer);
  ::close(client);
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

// Upstream -> client EOF first; the client keeps sending afterwards.
TEST(ProxyTest, HalfCloseFromTheUpstream) {
  RawUpstream upstream;
  Proxy proxy(upstream.port);
  const int client = ConnectLoopback(proxy.port);
  ASSERT_GE(client, 0);
  const int up = upstream.Accept();
  ASSERT_GE(up, 0);
  const std::string greeting = Pattern(200000, 41);
  ASSERT_TRUE(SendAll(up, greeting).ok());
  ASSERT_EQ(::shutdown(up, SHUT_WR), 0);
  std::string at_client;
  ASSERT_TRUE(ReadsToEndOrReset(client, &at_client));
  EXPECT_TRUE(at_client == greeting);
  const std::string late = Pattern(400000, 42);
  ASSERT_TRUE(SendAll(client, late).ok());
  ::shutdown(client, SHUT_WR);
  std::string at_upstream;
  ASSERT_TRUE(ReadsToEndOrReset(up, &at_upstream));
  EXPECT_TRUE(at_upstream == late);
  ::close(up);
  ::close(client);
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

TEST(ProxyTest, UpstreamRefusedClosesTheClient) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  Proxy proxy(port);
  const int client = ConnectLoopback(proxy.port);
  ASSERT_GE(client, 0);
  (void)SendAll(client, "hello");
  std::string got;
  EXPECT_TRUE(ReadsToEndOrReset(client, &got));  // not a timeout
  EXPECT_EQ(got, "");
  ::close(client);
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; }));
  EXPECT_EQ(proxy.reactor->Counters().connect_failures, 1u);
  ::close(reserved);
}

// The upstream resets in the middle of a transfer both ways.
TEST(ProxyTest, UpstreamResetMidTransferClosesTheClient) {
  RawUpstream upstream;
  Proxy proxy(upstream.port);
  const int client = ConnectLoopback(proxy.port, 30000);
  ASSERT_GE(client, 0);
  const int up = upstream.Accept();
  ASSERT_GE(up, 0);
  std::atomic<bool> done{false};
  std::thread sender([&] {
    const std::string chunk = Pattern(64 << 10, 51);
    while (!done.load() && SendAll(client, chunk).ok()) {
    }
  });
  ASSERT_TRUE(SendAll(up, Pattern(100000, 52)).ok());
  ASSERT_TRUE(ReadExact(up, 1 << 20).ok());  // the transfer is under way
  linger hard = {1, 0};  // close sends RST
  ::setsockopt(up, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  ::close(up);
  std::string got;
  EXPECT_TRUE(ReadsToEndOrReset(client, &got));  // not a timeout
  done.store(true);
  ::shutdown(client, SHUT_RDWR);
  sender.join();
  ::close(client);
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

TEST(ProxyTest, AThousandConcurrentConnections) {
  EchoServer echo;
  Proxy proxy(echo.port);
  constexpr int kThreads = 20;
  constexpr int kPerThread = 50;  // 1,000 connections open at once
  std::atomic<int> failures{0};
  std::atomic<int> connected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int> fds;
      for (int i = 0; i < kPerThread; ++i) {
        const int fd = ConnectLoopback(proxy.port, 30000);
        if (fd < 0) {
          failures.fetch_add(1);
          continue;
        }
        fds.push_back(fd);
        connected.fetch_add(1);
      }
      // Every connection is open before any is used and closed.
      Eventually([&] { return connected.load() == kThreads * kPerThread; },
                 30000);
      for (size_t i = 0; i < fds.size(); ++i) {
        if (!EchoRoundTrip(fds[i], Pattern(2000, t * 1000 + i)).ok()) {
          failures.fetch_add(1);
        }
      }
      for (int fd : fds) ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(Eventually(
      [&] { return proxy.reactor->connection_count() == 0; }, 30000));
  EXPECT_EQ(proxy.reactor->Counters().connect_attempts,
            uint64_t{kThreads * kPerThread});
}

TEST(ProxyTest, ParsesUpstream) {
  ConnectOptions o;
  EXPECT_TRUE(proxy::ParseUpstream("127.0.0.1:80", &o).ok());
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.port, 80);
  EXPECT_TRUE(proxy::ParseUpstream("[::1]:8080", &o).ok());
  EXPECT_EQ(o.address, "::1");
  EXPECT_EQ(o.port, 8080);
  EXPECT_FALSE(proxy::ParseUpstream("127.0.0.1", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("127.0.0.1:0", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream(":80", &o).ok());
}

}  // namespace
}  // namespace baton
