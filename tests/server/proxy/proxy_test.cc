// The proxy's handlers (server/proxy_handler.h) in process, on loopback:
// 10 MB each way byte-exact, a slow reader on either side with the proxy's
// memory bounded, the process-wide bound on queued bytes, no reading of a
// client before its upstream connects, half-close passed on both ways, an
// upstream that refuses or resets mid-transfer, failures counted and logged
// rate-limited, stopping (pairs finish after StopAccepting; CutAll resets),
// and 1,000 concurrent proxied connections.
//
// "Memory" is measured exactly, without timing: the bytes the proxy holds
// in user space are its bytes_read minus its bytes_written.
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "baton/reactor.h"
#include "server/proxy_handler.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"
#include "tests/util/test_dns_server.h"

namespace baton {
namespace {

using ::baton::testing::BoundNotListening;
using ::baton::testing::ConnectErrno;
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
struct TestProxy {
  std::unique_ptr<Reactor> reactor;
  std::unique_ptr<proxy::Proxy> proxy;
  int port = 0;
  explicit TestProxy(int upstream_port, int threads = 2,
                     size_t max_queued = size_t{256} << 20,
                     size_t high_water = kHighWater) {
    proxy::ProxyConfig config;
    config.upstream.address = "127.0.0.1";
    config.upstream.port = upstream_port;
    config.upstream.timeout = absl::Seconds(30);
    config.high_water = high_water;
    config.max_queued = max_queued;
    Start(config, threads);
  }
  // `dns_servers`: ReactorOptions::dns_servers for upstream host names.
  TestProxy(const proxy::ProxyConfig& config, int threads,
            const std::string& dns_servers = "") {
    Start(config, threads, dns_servers);
  }
  ~TestProxy() {
    // The reactor's connections use the proxy: stop them first.
    reactor->Stop();
    reactor->Wait();
  }
  // Bytes read and not yet written: what the proxy holds in memory.
  int64_t held() const {
    const ReactorCounters c = reactor->Counters();
    return static_cast<int64_t>(c.bytes_read) -
           static_cast<int64_t>(c.bytes_written);
  }
  proxy::ProxyCounters counters() const { return proxy->Counters(); }

 private:
  void Start(const proxy::ProxyConfig& config, int threads,
             const std::string& dns_servers = "") {
    ReactorOptions options = Threads(threads);
    options.dns_servers = dns_servers;
    options.output_high_water = size_t{1} << 40;  // as //server:proxy
    options.max_connections = 4000;
    reactor = StartReactor(options);
    proxy = std::make_unique<proxy::Proxy>(reactor.get(), config);
    auto p = reactor->Listen(ListenOptions{}, proxy->ClientFactory());
    EXPECT_TRUE(p.ok());
    port = p.ok() ? *p : 0;
  }
};

// Runs `body` on a thread that is joined on every path out of the test: a
// failed ASSERT first runs `unblock` (shutting the sockets the thread may
// be blocked on), so it neither hangs nor ends in std::terminate.
class JoinedThread {
 public:
  JoinedThread(std::function<void()> body, std::function<void()> unblock)
      : unblock_(std::move(unblock)), thread_(std::move(body)) {}
  ~JoinedThread() {
    if (!thread_.joinable()) return;
    unblock_();
    thread_.join();
  }
  JoinedThread(const JoinedThread&) = delete;
  JoinedThread& operator=(const JoinedThread&) = delete;
  // The normal path: waits for `body` to finish by itself.
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::function<void()> unblock_;
  std::thread thread_;
};

// Closes a descriptor on every path out of the test.
struct ScopedClose {
  explicit ScopedClose(int f) : fd(f) {}
  ~ScopedClose() {
    if (fd >= 0) ::close(fd);
  }
  ScopedClose(const ScopedClose&) = delete;
  ScopedClose& operator=(const ScopedClose&) = delete;
  const int fd;
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

// Reads everything until the stream ends; says how it ended.
enum class Ending { kEof, kReset, kTimeout };
Ending ReadUntilEnd(int fd, std::string* got) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      got->append(buf, n);
      continue;
    }
    if (n == 0) return Ending::kEof;
    if (errno == EINTR) continue;
    return errno == ECONNRESET ? Ending::kReset : Ending::kTimeout;
  }
}

TEST(ProxyTest, TenMegabytesEachWayByteExact) {
  EchoServer echo;
  TestProxy proxy(echo.port);
  const int fd = ConnectLoopback(proxy.port, 30000);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(10 << 20, 11)).ok());
  ::close(fd);
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

// One side sends 16 MB while the other reads nothing for a while: the
// proxy must stop reading from the sender near the high-water mark.
void ExpectBoundedWhileTheReaderIsIdle(bool slow_client, uint32_t seed) {
  RawUpstream upstream;
  TestProxy proxy(upstream.port);
  const ScopedClose client{ConnectLoopback(proxy.port, 30000)};
  ASSERT_GE(client.fd, 0);
  const ScopedClose up{upstream.Accept()};
  ASSERT_GE(up.fd, 0);
  const int sender_fd = slow_client ? up.fd : client.fd;
  const int reader_fd = slow_client ? client.fd : up.fd;
  const std::string payload = Pattern(16 << 20, seed);
  absl::Status sent;
  JoinedThread sender([&] { sent = SendAll(sender_fd, payload); },
                      [&] { ::shutdown(sender_fd, SHUT_RDWR); });
  // Back-pressure engages: the proxy pauses the sender's side (the kernel
  // buffers hold far less than 16 MB).
  ASSERT_TRUE(Eventually([&] { return proxy.counters().high_water_pauses > 0; },
                         30000));
  // While the reader does not read, sample what the proxy holds.
  for (int i = 0; i < 200; ++i) {
    ASSERT_LE(proxy.held(), kBound) << "sample " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto got = ReadExact(reader_fd, payload.size());
  sender.Join();
  ASSERT_TRUE(sent.ok()) << sent;
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload);
  EXPECT_EQ(proxy.counters().max_queued_pauses, 0u);
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
  TestProxy proxy(upstream.port);
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
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

// Upstream -> client EOF first; the client keeps sending afterwards.
TEST(ProxyTest, HalfCloseFromTheUpstream) {
  RawUpstream upstream;
  TestProxy proxy(upstream.port);
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
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

TEST(ProxyTest, UpstreamRefusedClosesTheClient) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  TestProxy proxy(port);
  const int client = ConnectLoopback(proxy.port);
  ASSERT_GE(client, 0);
  (void)SendAll(client, "hello");
  std::string got;
  EXPECT_TRUE(ReadsToEndOrReset(client, &got));  // not a timeout
  EXPECT_EQ(got, "");
  ::close(client);
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
  EXPECT_EQ(proxy.reactor->Counters().connect_failures, 1u);
  ::close(reserved);
}

// The upstream resets in the middle of a transfer both ways.
TEST(ProxyTest, UpstreamResetMidTransferClosesTheClient) {
  RawUpstream upstream;
  TestProxy proxy(upstream.port);
  const ScopedClose client{ConnectLoopback(proxy.port, 30000)};
  ASSERT_GE(client.fd, 0);
  const int up = upstream.Accept();
  ASSERT_GE(up, 0);
  std::atomic<bool> done{false};
  JoinedThread sender(
      [&] {
        const std::string chunk = Pattern(64 << 10, 51);
        while (!done.load() && SendAll(client.fd, chunk).ok()) {
        }
      },
      [&] {
        done.store(true);
        ::shutdown(client.fd, SHUT_RDWR);
      });
  ASSERT_TRUE(SendAll(up, Pattern(100000, 52)).ok());
  ASSERT_TRUE(ReadExact(up, 1 << 20).ok());  // the transfer is under way
  linger hard = {1, 0};                      // close sends RST
  ::setsockopt(up, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  ::close(up);
  std::string got;
  EXPECT_TRUE(ReadsToEndOrReset(client.fd, &got));  // not a timeout
  done.store(true);
  ::shutdown(client.fd, SHUT_RDWR);
  sender.Join();
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
}

TEST(ProxyTest, AThousandConcurrentConnections) {
  EchoServer echo;
  TestProxy proxy(echo.port);
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
  EXPECT_TRUE(Eventually([&] { return proxy.reactor->connection_count() == 0; },
                         30000));
  EXPECT_EQ(proxy.reactor->Counters().connect_attempts,
            uint64_t{kThreads * kPerThread});
}

// An upstream whose accept queue is full drops the proxy's SYN, so its
// connect stays in progress (until a SYN retransmission finds room). Until
// it connects nothing is read from the client: the proxy holds none of its
// bytes. Then everything arrives, byte-exact.
TEST(ProxyTest, ClientIsNotReadBeforeItsUpstreamConnects) {
  int port = 0;
  const ScopedClose listener{BoundNotListening(&port)};
  ASSERT_EQ(::listen(listener.fd, 0), 0);           // room for one connection
  const ScopedClose filler{ConnectLoopback(port)};  // takes it
  ASSERT_GE(filler.fd, 0);
  TestProxy proxy(port);
  const ScopedClose client{ConnectLoopback(proxy.port, 30000)};
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(Eventually(
      [&] { return proxy.reactor->Counters().connect_attempts == 1; }));
  const std::string payload = Pattern(1 << 20, 61);
  absl::Status sent;
  JoinedThread sender([&] { sent = SendAll(client.fd, payload); },
                      [&] { ::shutdown(client.fd, SHUT_RDWR); });
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(proxy.reactor->Counters().bytes_read, 0u) << "sample " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // Make room: the proxy's connect completes on a SYN retransmission.
  const int first = ::accept(listener.fd, nullptr, nullptr);
  ASSERT_GE(first, 0);
  ::close(first);
  timeval tv = {30, 0};
  ::setsockopt(listener.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const ScopedClose up{::accept(listener.fd, nullptr, nullptr)};
  ASSERT_GE(up.fd, 0);
  ::setsockopt(up.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto got = ReadExact(up.fd, payload.size());
  sender.Join();
  ASSERT_TRUE(sent.ok()) << sent;
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload);
}

// Four clients send 16 MB each to an upstream that reads nothing yet. The
// per-pair high-water mark is far above what they send; the process-wide
// bound (1 MiB) is what stops the proxy reading. It holds no more than the
// bound plus a few reads per side, says so in its counters, then delivers
// every byte once the upstream reads, and its account returns to zero.
TEST(ProxyTest, MaxQueuedBoundsTheWholeProxy) {
  constexpr int kPairs = 4;
  constexpr size_t kMaxQueued = 1 << 20;
  constexpr size_t kSize = 16 << 20;
  // Each side may read once more before it pauses, and one read of each
  // may be in flight: 64 KiB reads (the reactor's default).
  constexpr int64_t kLimit = kMaxQueued + 2 * kPairs * 2 * (64 << 10);
  RawUpstream upstream;
  TestProxy proxy(upstream.port, 2, kMaxQueued,
                  /*high_water=*/size_t{1} << 30);
  std::vector<std::unique_ptr<ScopedClose>> clients, ups;
  std::vector<std::string> payloads;
  for (int i = 0; i < kPairs; ++i) {
    clients.push_back(
        std::make_unique<ScopedClose>(ConnectLoopback(proxy.port, 30000)));
    ASSERT_GE(clients.back()->fd, 0);
    // Accepted in connect order: pair i is clients[i] -> ups[i].
    ups.push_back(std::make_unique<ScopedClose>(upstream.Accept()));
    ASSERT_GE(ups.back()->fd, 0);
    payloads.push_back(Pattern(kSize, 70 + i));
  }
  std::vector<absl::Status> sent(kPairs);
  std::vector<std::unique_ptr<JoinedThread>> senders;
  for (int i = 0; i < kPairs; ++i) {
    const int fd = clients[i]->fd;
    senders.push_back(std::make_unique<JoinedThread>(
        [&, i, fd] { sent[i] = SendAll(fd, payloads[i]); },
        [fd] { ::shutdown(fd, SHUT_RDWR); }));
  }
  // The bound bites.
  ASSERT_TRUE(
      Eventually([&] { return proxy.counters().max_queued_pauses > 0; }, 30000))
      << proxy.counters().ToString() << "; "
      << proxy.reactor->Counters().ToString();
  for (int i = 0; i < 200; ++i) {
    ASSERT_LE(proxy.held(), kLimit) << "sample " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // The upstream reads now; every byte arrives.
  std::vector<absl::StatusOr<std::string>> got(kPairs, std::string());
  {
    std::vector<std::unique_ptr<JoinedThread>> readers;
    for (int i = 0; i < kPairs; ++i) {
      const int fd = ups[i]->fd;
      readers.push_back(std::make_unique<JoinedThread>(
          [&, i, fd] { got[i] = ReadExact(fd, kSize); },
          [fd] { ::shutdown(fd, SHUT_RDWR); }));
    }
    for (auto& r : readers) r->Join();
  }
  for (auto& s : senders) s->Join();
  for (int i = 0; i < kPairs; ++i) {
    ASSERT_TRUE(sent[i].ok()) << sent[i];
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_TRUE(*got[i] == payloads[i]) << "pair " << i;
  }
  const proxy::ProxyCounters c = proxy.counters();
  EXPECT_LE(c.peak_queued_bytes, static_cast<uint64_t>(kLimit));
  EXPECT_EQ(c.high_water_pauses, 0u);
  EXPECT_TRUE(Eventually([&] { return proxy.counters().queued_bytes == 0; }))
      << proxy.counters().ToString();
}

// Collects the WARNING lines glog writes while it is installed.
class WarningSink : public google::LogSink {
 public:
  WarningSink() { google::AddLogSink(this); }
  ~WarningSink() override { google::RemoveLogSink(this); }
  void send(google::LogSeverity severity, const char*, const char*, int,
            const ::tm*, const char* message, size_t length) override {
    if (severity != google::GLOG_WARNING) return;
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(message, length);
  }
  int Count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(
        std::count_if(lines_.begin(), lines_.end(), [&](const std::string& l) {
          return l.find(needle) != std::string::npos;
        }));
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Upstream failures, whether the upstream's name does not resolve or the
// upstream refuses the connection, are all counted; the warnings are
// rate-limited, not one per client, and the proxy keeps serving.
void ExpectFailuresCountedAndLoggedRarely(const std::string& address, int port,
                                          const std::string& dns_servers = "") {
  WarningSink sink;
  proxy::ProxyConfig config;
  config.upstream.address = address;
  config.upstream.port = port;
  TestProxy proxy(config, 2, dns_servers);
  constexpr int kClients = 20;
  for (int i = 0; i < kClients; ++i) {
    const ScopedClose client{ConnectLoopback(proxy.port)};
    ASSERT_GE(client.fd, 0);
    std::string got;
    EXPECT_TRUE(ReadsToEndOrReset(client.fd, &got));  // closed, not a reply
    EXPECT_EQ(got, "");
  }
  EXPECT_TRUE(Eventually([&] {
    return proxy.counters().upstream_failures == uint64_t{kClients};
  })) << proxy.counters().ToString();
  EXPECT_TRUE(
      Eventually([&] { return proxy.reactor->connection_count() == 0; }));
  EXPECT_LE(sink.Count("upstream " + address), 1);
  EXPECT_EQ(proxy.counters().pairs, uint64_t{kClients});
}

TEST(ProxyTest, UpstreamNameThatDoesNotResolveIsCountedAndLoggedRarely) {
  testing::TestDnsServer dns;  // knows no names: NXDOMAIN
  ExpectFailuresCountedAndLoggedRarely("nosuch.test", 9, dns.servers());
  EXPECT_GE(dns.queries("nosuch.test"), 1);
}

TEST(ProxyTest, RelaysToAnUpstreamGivenByName) {
  auto echo = StartReactor(Threads(2));
  auto echo_port = echo->Listen(ListenOptions{}, testing::EchoFactory());
  ASSERT_TRUE(echo_port.ok()) << echo_port.status();
  testing::TestDnsServer dns;
  dns.Add("upstream.test", {"127.0.0.1"});
  proxy::ProxyConfig config;
  ASSERT_TRUE(
      proxy::ParseUpstream("upstream.test:" + std::to_string(*echo_port),
                           &config.upstream)
          .ok());
  TestProxy proxy(config, 2, dns.servers());
  for (int i = 0; i < 3; ++i) {
    const ScopedClose client{ConnectLoopback(proxy.port)};
    ASSERT_GE(client.fd, 0);
    EXPECT_TRUE(EchoRoundTrip(client.fd, Pattern(100000, i)).ok());
  }
  EXPECT_EQ(proxy.counters().upstream_failures, 0u);
  EXPECT_GE(dns.queries("upstream.test"), 1);
}

TEST(ProxyTest, RefusingUpstreamIsCountedAndLoggedRarely) {
  int port = 0;
  const ScopedClose reserved{BoundNotListening(&port)};
  ExpectFailuresCountedAndLoggedRarely("127.0.0.1", port);
}

// A pair in transfer when the proxy stops accepting finishes: the client
// gets every byte and then EOF, while newcomers are refused.
TEST(ProxyTest, PairsFinishAfterStopAccepting) {
  RawUpstream upstream;
  TestProxy proxy(upstream.port);
  const ScopedClose client{ConnectLoopback(proxy.port, 30000)};
  ASSERT_GE(client.fd, 0);
  const ScopedClose up{upstream.Accept()};
  ASSERT_GE(up.fd, 0);
  const std::string payload = Pattern(16 << 20, 81);
  absl::Status sent;
  JoinedThread sender(
      [&] {
        sent = SendAll(up.fd, payload);
        ::shutdown(up.fd, SHUT_WR);
      },
      [&] { ::shutdown(up.fd, SHUT_RDWR); });
  auto first = ReadExact(client.fd, 1);  // the transfer is under way
  ASSERT_TRUE(first.ok()) << first.status();
  proxy.reactor->StopAccepting();
  EXPECT_EQ(ConnectErrno(proxy.port), ECONNREFUSED);
  EXPECT_EQ(proxy.proxy->live_pairs(), 1u);
  std::string rest;
  EXPECT_EQ(ReadUntilEnd(client.fd, &rest), Ending::kEof);
  sender.Join();
  ASSERT_TRUE(sent.ok()) << sent;
  EXPECT_TRUE(*first + rest == payload);
  ::shutdown(client.fd, SHUT_WR);  // our side is done too: the pair ends
  EXPECT_TRUE(Eventually([&] { return proxy.proxy->live_pairs() == 0; }));
  EXPECT_EQ(proxy.proxy->CutAll(), 0u);
}

// CutAll ends a pair in the middle of a transfer with a reset, never a
// FIN the reading side could take for a complete stream. (Only the reading
// side is checked: on the sending side a failed send may take the reset's
// error before a read could see it.)
void ExpectCutAllResetsTheReader(bool client_reads, uint32_t seed) {
  RawUpstream upstream;
  TestProxy proxy(upstream.port);
  const ScopedClose client{ConnectLoopback(proxy.port, 30000)};
  ASSERT_GE(client.fd, 0);
  const ScopedClose up{upstream.Accept()};
  ASSERT_GE(up.fd, 0);
  const int sender_fd = client_reads ? up.fd : client.fd;
  const int reader_fd = client_reads ? client.fd : up.fd;
  const std::string payload = Pattern(16 << 20, seed);
  JoinedThread sender([&] { (void)SendAll(sender_fd, payload); },
                      [&] { ::shutdown(sender_fd, SHUT_RDWR); });
  auto first = ReadExact(reader_fd, 1);  // the transfer is under way
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(proxy.proxy->CutAll(), 1u);
  std::string rest;
  EXPECT_EQ(ReadUntilEnd(reader_fd, &rest), Ending::kReset);
  EXPECT_LT(rest.size() + 1, payload.size());
  EXPECT_TRUE(*first + rest == payload.substr(0, rest.size() + 1));
  sender.Join();
  EXPECT_TRUE(Eventually([&] { return proxy.proxy->live_pairs() == 0; }));
  EXPECT_EQ(proxy.counters().pairs_cut, 1u);
  EXPECT_EQ(proxy.counters().upstream_failures, 0u);
}

TEST(ProxyTest, CutAllResetsTheClient) {
  ExpectCutAllResetsTheReader(/*client_reads=*/true, 91);
}

TEST(ProxyTest, CutAllResetsTheUpstream) {
  ExpectCutAllResetsTheReader(/*client_reads=*/false, 92);
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
  // Host names are kept for Reactor::Connect to look up.
  EXPECT_TRUE(proxy::ParseUpstream("localhost:9", &o).ok());
  EXPECT_EQ(o.address, "localhost");
  EXPECT_EQ(o.port, 9);
  EXPECT_TRUE(proxy::ParseUpstream("db.internal:5432", &o).ok());
  EXPECT_EQ(o.address, "db.internal");
  EXPECT_FALSE(proxy::ParseUpstream("[localhost]:80", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("bad name:80", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("1.2.3:80", &o).ok());
  // An IPv6 literal goes in brackets, an IPv4 one does not.
  EXPECT_FALSE(proxy::ParseUpstream("::1:80", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("[127.0.0.1]:80", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("127.0.0.1:http", &o).ok());
  EXPECT_FALSE(proxy::ParseUpstream("127.0.0.1:65536", &o).ok());
}

}  // namespace
}  // namespace baton
