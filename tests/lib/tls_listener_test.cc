// A TLS listener (ListenOptions::tls) through the public API, over real
// loopback sockets, against OpenSSL's blocking client: echo byte for byte,
// OnOpen after the handshake, failed and stalled handshakes closed without
// OnOpen or OnClose, truncation, close_notify on Close, and plaintext left
// inside the engine while reading was paused.
#include <dirent.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "baton/reactor.h"
#include "baton/tls.h"
#include "lib/tls/tls_context.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::SendAll;
using ::baton::testing::TestPki;

// Only a hang reaches these bounds.
constexpr auto kBound = std::chrono::seconds(30);
constexpr int kBoundMs = 30000;

int OpenDescriptors() {
  int count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) ++count;
    ::closedir(dir);
  }
  return count;
}

// Reads and discards until the peer ends the connection (an alert may come
// first); true on EOF or reset, false on a timeout.
bool ReadsToEnd(int fd) {
  char buffer[4096];
  for (int i = 0; i < 100000; ++i) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
  return false;
}

// What the server's handlers saw.
struct Events {
  std::atomic<int> opens{0};
  std::atomic<int> closes{0};
  std::atomic<int> pauses{0};
  std::mutex mu;
  std::vector<absl::Status> close_reasons;  // guarded by mu
  Notification closed;                      // the first OnClose
};

// Echoes; "bye" closes after echoing it. With `pause_first`, the first
// OnData pauses reading and a timer resumes it, so what the engine
// decrypted meanwhile must be delivered without new socket input.
class EchoHandler : public ConnectionHandler {
 public:
  EchoHandler(Events* events, bool pause_first)
      : events_(events), pause_first_(pause_first) {}
  void OnOpen(Connection& conn) override {
    events_->opens.fetch_add(1);
    conn.Write("hello");
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    if (data.find("bye") != absl::string_view::npos) conn.Close();
    if (pause_first_) {
      pause_first_ = false;
      events_->pauses.fetch_add(1);
      conn.PauseReading();
      conn.RunAfter(absl::Milliseconds(1),
                    [](Connection& c) { c.ResumeReading(); });
    }
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(events_->mu);
      events_->close_reasons.push_back(reason);
    }
    events_->closes.fetch_add(1);
    events_->closed.Notify();
  }

 private:
  Events* const events_;
  bool pause_first_;
};

// Reactor::Connect's side: sends "ping" in OnOpen and closes once the
// server's greeting and the echo ("helloping") came back.
class PingHandler : public ConnectionHandler {
 public:
  struct Result {
    std::atomic<int> opens{0};
    std::mutex mu;
    std::string received;  // guarded by mu
    absl::Status reason;   // guarded by mu
    Notification closed;
  };
  explicit PingHandler(Result* result) : result_(result) {}
  void OnOpen(Connection& conn) override {
    result_->opens.fetch_add(1);
    conn.Write("ping");
  }
  void OnData(Connection& conn, absl::string_view data) override {
    std::lock_guard<std::mutex> lock(result_->mu);
    result_->received.append(data.data(), data.size());
    if (result_->received.size() >= 9) conn.Close();
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(result_->mu);
      result_->reason = reason;
    }
    result_->closed.Notify();
  }

 private:
  Result* const result_;
};

// A blocking OpenSSL client on its own socket (reads and writes give up
// after the bound).
// A blocking TLS client that gives up connecting after kBoundMs.
class Client : public baton::testing::TlsTestClient {
 public:
  Client(SSL_CTX* ctx, int port) : TlsTestClient(ctx, port, kBoundMs) {}
};

// Run with handshakes on the workers (0) and on a handshake thread (1,
// ReactorOptions::tls_handshake_threads): the contract is the same.
class TlsListenerTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("listener");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    client_ctx_ = ClientContext(pki_.ca.certificate_file);
    ASSERT_NE(client_ctx_, nullptr);
  }
  void TearDown() override {
    if (reactor_ != nullptr) {
      reactor_->Stop();
      reactor_->Wait();
    }
    SSL_CTX_free(client_ctx_);
  }

  static SSL_CTX* ClientContext(const std::string& ca_file) {
    return baton::testing::NewVerifyingClientContext(ca_file);
  }

  // Starts a reactor with a TLS listener; returns its port.
  int StartServer(bool pause_first = false,
                  absl::Duration handshake_timeout = absl::Seconds(60),
                  size_t output_high_water = 4 << 20,
                  const std::string& plain_http_response = "") {
    ReactorOptions options;
    options.threads = 2;
    options.output_high_water = output_high_water;
    options.tls_handshake_threads = GetParam();
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    EXPECT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    tls->handshake_timeout = handshake_timeout;
    tls->plain_http_response = plain_http_response;
    ListenOptions listen;
    listen.tls = tls;
    Events* events = &events_;
    absl::StatusOr<int> port = reactor_->Listen(listen, [events, pause_first] {
      return std::make_unique<EchoHandler>(events, pause_first);
    });
    EXPECT_TRUE(port.ok()) << port.status();
    EXPECT_TRUE(reactor_->Start().ok());
    return port.ok() ? *port : -1;
  }

  // Waits (bounded) until no connection is left.
  bool WaitNoConnections() {
    for (int i = 0; i < kBoundMs; ++i) {
      if (reactor_->connection_count() == 0) return true;
      ::usleep(1000);
    }
    return false;
  }
  // Waits (bounded) until the process has `count` descriptors.
  bool WaitDescriptors(int count) {
    for (int i = 0; i < kBoundMs; ++i) {
      if (OpenDescriptors() == count) return true;
      ::usleep(1000);
    }
    return false;
  }

  TestPki pki_;
  SSL_CTX* client_ctx_ = nullptr;
  Events events_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_P(TlsListenerTest, EchoesSmallAndLargePayloadsByteExact) {
  const int port = StartServer();
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");  // written in OnOpen
  const std::string small = Pattern(100, 1);
  ASSERT_TRUE(client.Send(small));
  EXPECT_EQ(client.Receive(small.size()), small);
  // 4 MiB in 64 KiB steps, each echo read before the next is sent.
  const std::string large = Pattern(4 << 20, 2);
  for (size_t at = 0; at < large.size(); at += 64 << 10) {
    const std::string piece = large.substr(at, 64 << 10);
    ASSERT_TRUE(client.Send(piece));
    ASSERT_TRUE(client.Receive(piece.size()) == piece) << "at " << at;
  }
  EXPECT_EQ(events_.opens.load(), 1);
  EXPECT_EQ(reactor_->Counters().tls_handshakes, 1u);
  // Every step of the handshake went to the handshake thread, or none.
  if (GetParam() > 0) {
    EXPECT_GT(reactor_->Counters().tls_handshake_steps_deferred, 0u);
  } else {
    EXPECT_EQ(reactor_->Counters().tls_handshake_steps_deferred, 0u);
  }
}

TEST_P(TlsListenerTest, HighWaterPausesWithPlaintextInTheEngine) {
  // Every echoed record passes the 1 KiB mark (TLS output is always
  // queued), so reading stops with the rest of each 64 KiB write decrypted
  // or fed inside the engine, and resumes once the queue drains.
  const int port = StartServer(false, absl::Seconds(60), 1024);
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  const std::string large = Pattern(1 << 20, 4);
  for (size_t at = 0; at < large.size(); at += 64 << 10) {
    const std::string piece = large.substr(at, 64 << 10);
    ASSERT_TRUE(client.Send(piece));
    ASSERT_TRUE(client.Receive(piece.size()) == piece) << "at " << at;
  }
}

TEST_P(TlsListenerTest, OnOpenRunsOnlyAfterTheHandshake) {
  const int port = StartServer();
  // A TCP connection that has not sent its ClientHello: no OnOpen.
  const int silent = ConnectLoopback(port, kBoundMs);
  ASSERT_GE(silent, 0);
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  // The handshaken client opened; the silent one is still handshaking.
  EXPECT_EQ(events_.opens.load(), 1);
  EXPECT_EQ(reactor_->connection_count(), 2u);
  ::close(silent);
  ASSERT_TRUE(client.Send("bye"));
  EXPECT_EQ(client.Receive(3), "bye");
  ASSERT_TRUE(WaitNoConnections());
  EXPECT_EQ(events_.opens.load(), 1);
  EXPECT_EQ(events_.closes.load(), 1);  // the silent one never opened
}

TEST_P(TlsListenerTest, BadClientsAreClosedAndOthersStillServed) {
  const int port = StartServer();
  const int baseline = OpenDescriptors();
  {
    // Plaintext HTTP on the TLS port.
    const int fd = ConnectLoopback(port, kBoundMs);
    ASSERT_TRUE(SendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    EXPECT_TRUE(ReadsToEnd(fd));
    ::close(fd);
  }
  {
    // Garbage that is not TLS.
    const int fd = ConnectLoopback(port, kBoundMs);
    ASSERT_TRUE(SendAll(fd, std::string(300, '\x16')).ok());
    EXPECT_TRUE(ReadsToEnd(fd));
    ::close(fd);
  }
  {
    // A client that does not trust the server's certificate.
    absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
    ASSERT_TRUE(other.ok());
    SSL_CTX* distrusting = ClientContext(other->ca.certificate_file);
    ASSERT_NE(distrusting, nullptr);
    {
      Client client(distrusting, port);
      EXPECT_FALSE(client.Handshake());
      ERR_clear_error();
      EXPECT_TRUE(ReadsToEnd(client.fd()));
    }
    SSL_CTX_free(distrusting);
  }
  ASSERT_TRUE(WaitNoConnections());
  EXPECT_EQ(reactor_->Counters().tls_handshake_failures, 3u);
  EXPECT_EQ(events_.opens.load(), 0);
  EXPECT_EQ(events_.closes.load(), 0);  // never opened: no OnClose
  EXPECT_TRUE(WaitDescriptors(baseline))
      << OpenDescriptors() << " vs " << baseline;
  // The server still serves a good client.
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  ASSERT_TRUE(client.Send("ping"));
  EXPECT_EQ(client.Receive(4), "ping");
}

TEST_P(TlsListenerTest, PlainHttpRequestGetsThePlaintextAnswerThenEof) {
  const std::string answer =
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 6\r\n\r\nplain\n";
  const int port = StartServer(false, absl::Seconds(60), 4 << 20, answer);
  {
    const int fd = ConnectLoopback(port, kBoundMs);
    ASSERT_TRUE(SendAll(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    absl::StatusOr<std::string> got = baton::testing::ReadToEof(fd, 4096);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, answer);
  }
  {
    // Garbage that is not HTTP gets no answer.
    const int fd = ConnectLoopback(port, kBoundMs);
    ASSERT_TRUE(SendAll(fd, std::string(300, '\x01')).ok());
    absl::StatusOr<std::string> got = baton::testing::ReadToEof(fd, 4096);
    ::close(fd);
    if (got.ok()) {
      EXPECT_EQ(got->find("HTTP/"), std::string::npos) << *got;
    }
  }
  ASSERT_TRUE(WaitNoConnections());
  EXPECT_EQ(reactor_->Counters().tls_handshake_failures, 2u);
  EXPECT_EQ(events_.opens.load(), 0);
  EXPECT_EQ(events_.closes.load(), 0);
}

TEST_P(TlsListenerTest, StalledHandshakeIsCutAtTheHandshakeTimeout) {
  const int port = StartServer(false, absl::Milliseconds(100));
  const int fd = ConnectLoopback(port, kBoundMs);
  ASSERT_GE(fd, 0);
  // Sends nothing: the server closes it once the timeout passes.
  EXPECT_TRUE(ReadsToEnd(fd));
  ::close(fd);
  ASSERT_TRUE(WaitNoConnections());
  EXPECT_EQ(reactor_->Counters().tls_handshake_failures, 1u);
  EXPECT_EQ(events_.opens.load(), 0);
  EXPECT_EQ(events_.closes.load(), 0);
}

TEST_P(TlsListenerTest, DrainClosesConnectionsStillHandshaking) {
  const int port = StartServer(false, absl::Seconds(600));
  const int fd = ConnectLoopback(port, kBoundMs);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < kBoundMs && reactor_->connection_count() == 0; ++i) {
    ::usleep(1000);
  }
  ASSERT_EQ(reactor_->connection_count(), 1u);
  reactor_->Drain();
  // Closed now, not at the handshake timeout.
  EXPECT_TRUE(ReadsToEnd(fd));
  ::close(fd);
  ASSERT_TRUE(WaitNoConnections());
  EXPECT_EQ(events_.opens.load(), 0);
  EXPECT_EQ(events_.closes.load(), 0);
}

TEST_P(TlsListenerTest, ConnectWithTlsTalksToATlsListener) {
  const int port = StartServer();
  auto tls = std::make_shared<TlsClientOptions>();
  tls->ca_file = pki_.ca.certificate_file;
  tls->server_name = "localhost";
  ConnectOptions connect;
  connect.port = port;
  connect.tls = tls;
  PingHandler::Result result;
  ASSERT_TRUE(reactor_
                  ->Connect(connect,
                            [&result] {
                              return std::make_unique<PingHandler>(&result);
                            })
                  .ok());
  ASSERT_TRUE(result.closed.WaitFor(kBound));
  EXPECT_EQ(result.opens.load(), 1);
  std::lock_guard<std::mutex> lock(result.mu);
  EXPECT_EQ(result.received, "helloping");
  EXPECT_TRUE(result.reason.ok()) << result.reason;
}

TEST_P(TlsListenerTest, ConnectThatDistrustsTheServerClosesWithoutOpening) {
  const int port = StartServer();
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(other.ok());
  auto tls = std::make_shared<TlsClientOptions>();
  tls->ca_file = other->ca.certificate_file;
  tls->server_name = "localhost";
  ConnectOptions connect;
  connect.port = port;
  connect.tls = tls;
  PingHandler::Result result;
  ASSERT_TRUE(reactor_
                  ->Connect(connect,
                            [&result] {
                              return std::make_unique<PingHandler>(&result);
                            })
                  .ok());
  ASSERT_TRUE(result.closed.WaitFor(kBound));
  EXPECT_EQ(result.opens.load(), 0);
  std::lock_guard<std::mutex> lock(result.mu);
  EXPECT_EQ(result.reason.code(), absl::StatusCode::kUnauthenticated)
      << result.reason;
}

TEST_P(TlsListenerTest, ConnectWithABadTlsOptionFails) {
  StartServer();
  auto tls = std::make_shared<TlsClientOptions>();
  tls->ca_file = "/nonexistent/ca.pem";
  ConnectOptions connect;
  connect.port = 1;
  connect.tls = tls;
  PingHandler::Result result;
  EXPECT_EQ(reactor_
                ->Connect(connect,
                          [&result] {
                            return std::make_unique<PingHandler>(&result);
                          })
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(TlsListenerTest, EofWithoutCloseNotifyIsDataLoss) {
  const int port = StartServer();
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  ASSERT_TRUE(client.Send("data"));
  EXPECT_EQ(client.Receive(4), "data");
  client.CloseSocket();
  ASSERT_TRUE(events_.closed.WaitFor(kBound));
  std::lock_guard<std::mutex> lock(events_.mu);
  ASSERT_EQ(events_.close_reasons.size(), 1u);
  EXPECT_EQ(events_.close_reasons[0].code(), absl::StatusCode::kDataLoss)
      << events_.close_reasons[0];
}

TEST_P(TlsListenerTest, CloseSendsCloseNotify) {
  const int port = StartServer();
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  ASSERT_TRUE(client.Send("bye"));
  EXPECT_EQ(client.Receive(3), "bye");
  EXPECT_TRUE(client.ReceivedCloseNotify());
  ASSERT_TRUE(events_.closed.WaitFor(kBound));
  std::lock_guard<std::mutex> lock(events_.mu);
  ASSERT_EQ(events_.close_reasons.size(), 1u);
  EXPECT_TRUE(events_.close_reasons[0].ok()) << events_.close_reasons[0];
}

TEST_P(TlsListenerTest, PlaintextHeldWhilePausedIsDeliveredOnResume) {
  const int port = StartServer(/*pause_first=*/true);
  Client client(client_ctx_, port);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(5), "hello");
  // Three records in one write: the first OnData pauses reading, so the
  // rest waits decrypted (or fed) inside the engine, and no more bytes come
  // to make the socket signal.
  const std::string payload = Pattern(48 << 10, 3);
  ASSERT_TRUE(client.Send(payload));
  const std::string received = client.Receive(payload.size());
  EXPECT_EQ(received.size(), payload.size());
  EXPECT_TRUE(received == payload);
  EXPECT_EQ(events_.pauses.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(HandshakeThreads, TlsListenerTest,
                         ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return param.param == 0
                                      ? std::string("OnWorkers")
                                      : std::string("OnHandshakeThread");
                         });

}  // namespace
}  // namespace baton
