// Connection::StartTls through the public API, over real loopback sockets:
// an SMTP-like server that upgrades after "220 go ahead" (against
// OpenSSL's blocking client, including a ClientHello sent in the same
// segment as the STARTTLS command), a client-role upgrade of
// Reactor::Connect against a PostgreSQL-like OpenSSL server, refusals
// (already TLS, closing, bad options) and failed or stalled handshakes
// after the upgrade reported in OnClose.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "baton/reactor.h"
#include "baton/tls.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::SendAll;
using ::baton::testing::TestPki;

// Only a hang reaches these bounds.
constexpr auto kBound = std::chrono::seconds(30);
constexpr int kBoundMs = 30000;

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

constexpr absl::string_view kGreeting = "220 baton ESMTP\r\n";
constexpr absl::string_view kGoAhead = "220 go ahead\r\n";
constexpr absl::string_view kSecureHello = "250 secure hello\r\n";
constexpr absl::string_view kPlainViaReactor = "250 plain via reactor\r\n";
constexpr absl::string_view kSecureViaReactor = "250 secure via reactor\r\n";

// What the server's handlers saw.
struct Events {
  std::mutex mu;
  std::vector<absl::Status> start_results;  // every StartTls's
  std::vector<absl::Status> close_reasons;
  // Bytes handed to OnData after StartTls and before OnTlsReady: input
  // past the upgrade point that reached the handler instead of the engine.
  std::string leaked;
  size_t tail_at_upgrade = 0;  // bytes after "STARTTLS\r\n" in that OnData
  std::atomic<int> ready{0};
  Notification closed;
};

// An SMTP-like server: greets, answers "NOOP" with "250 ok", and
// "STARTTLS" with "220 go ahead" followed by StartTls, retaining whatever
// came after the command line for the engine. Right after StartTls it
// writes kSecureHello (to be encrypted once the handshake completes);
// upgraded, it echoes. "QUIT" closes and then tries StartTls (refused).
class SmtpHandler : public ConnectionHandler {
 public:
  // `from_timer`: StartTls runs in a connection timer set by the OnData
  // that retained the bytes after the command, not in that OnData.
  SmtpHandler(Events* events, std::shared_ptr<const TlsServerOptions> tls,
              bool from_timer)
      : events_(events), tls_(std::move(tls)), from_timer_(from_timer) {}

  void OnOpen(Connection& conn) override { conn.Write(kGreeting); }

  void OnData(Connection& conn, absl::string_view data) override {
    if (ready_) {
      conn.Write(data);
      return;
    }
    if (upgraded_) {
      std::lock_guard<std::mutex> lock(events_->mu);
      events_->leaked.append(data.data(), data.size());
      return;
    }
    for (;;) {
      const size_t end = data.find("\r\n");
      if (end == absl::string_view::npos) {
        conn.Retain(data.size());  // an incomplete line
        return;
      }
      const absl::string_view line = data.substr(0, end);
      data.remove_prefix(end + 2);
      if (line == "NOOP") {
        conn.Write("250 ok\r\n");
      } else if (line == "QUIT") {
        conn.Write("221 bye\r\n");
        conn.Close();
        Record(conn.StartTls(tls_));
        return;
      } else if (line == "STARTTLS" || line == "STARTTLS SHUT" ||
                 line == "STARTTLS MIX") {
        const bool mix = line == "STARTTLS MIX";
        if (mix) conn.reactor().Write(conn.id(), kPlainViaReactor);
        conn.Write(kGoAhead);
        conn.Retain(data.size());  // the peer's first TLS bytes, if any
        {
          std::lock_guard<std::mutex> lock(events_->mu);
          events_->tail_at_upgrade = data.size();
        }
        if (from_timer_) {
          upgraded_ = true;
          conn.RunAfter(absl::ZeroDuration(), [this](Connection& c) {
            Record(c.StartTls(tls_));
            c.Write(kSecureHello);
          });
          return;
        }
        const absl::Status started = conn.StartTls(tls_);
        Record(started);
        if (!started.ok()) {
          conn.Write("454 TLS not available\r\n");
          conn.Retain(0);
          continue;
        }
        upgraded_ = true;
        if (mix) conn.reactor().Write(conn.id(), kSecureViaReactor);
        conn.Write(kSecureHello);
        // Once the handshake has sent kSecureHello: close_notify, SHUT_WR.
        if (line == "STARTTLS SHUT") conn.ShutdownWrite();
        return;
      } else {
        conn.Write("500 unknown\r\n");
      }
    }
  }

  void OnTlsReady(Connection& conn) override {
    ready_ = true;
    events_->ready.fetch_add(1);
    Record(conn.StartTls(tls_));  // refused: already TLS
  }

  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(events_->mu);
      events_->close_reasons.push_back(reason);
    }
    events_->closed.Notify();
  }

 private:
  void Record(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(events_->mu);
    events_->start_results.push_back(status);
  }

  Events* const events_;
  const std::shared_ptr<const TlsServerOptions> tls_;
  const bool from_timer_;
  bool upgraded_ = false;
  bool ready_ = false;
};

// A blocking client that talks plaintext on its socket first, then TLS
// (OpenSSL) on the same socket. It checks the server as "localhost".
class StartTlsClient {
 public:
  StartTlsClient(SSL_CTX* ctx, int port)
      : fd_(ConnectLoopback(port, kBoundMs)), ssl_(SSL_new(ctx)) {
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
  }
  ~StartTlsClient() {
    SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }
  bool SendPlain(absl::string_view data) {
    return SendAll(fd_, std::string(data)).ok();
  }
  std::string ReadPlain(size_t size) {
    absl::StatusOr<std::string> data = ReadExact(fd_, size);
    return data.ok() ? *data : data.status().ToString();
  }

  // The handshake on the socket, from its first byte.
  bool Handshake() {
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }
  // Sends `command` and the ClientHello in one send(2), so that they reach
  // the server as one segment; FinishHandshake does the rest.
  bool SendWithClientHello(absl::string_view command) {
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in, out);  // owned by ssl_ from here
    const int result = SSL_connect(ssl_);
    if (result == 1 || SSL_get_error(ssl_, result) != SSL_ERROR_WANT_READ) {
      return false;
    }
    char* hello = nullptr;
    const long size = BIO_get_mem_data(out, &hello);
    if (size <= 0) return false;
    std::string segment(command);
    segment.append(hello, static_cast<size_t>(size));
    SSL_set_fd(ssl_, fd_);  // frees the memory BIOs; `in` holds nothing
    return SendAll(fd_, segment).ok();
  }
  bool FinishHandshake() { return SSL_connect(ssl_) == 1; }

  bool Send(const std::string& data) {
    size_t written = 0;
    return SSL_write_ex(ssl_, data.data(), data.size(), &written) == 1 &&
           written == data.size();
  }
  std::string Receive(size_t size) {
    std::string out;
    char buffer[16384];
    while (out.size() < size) {
      size_t n = 0;
      const size_t want = std::min(sizeof(buffer), size - out.size());
      if (SSL_read_ex(ssl_, buffer, want, &n) != 1) break;
      out.append(buffer, n);
    }
    return out;
  }
  // The server's close_notify came (a clean TLS end of stream).
  bool ReceivedCloseNotify() {
    char byte;
    size_t n = 0;
    const int result = SSL_read_ex(ssl_, &byte, 1, &n);
    return result == 0 && SSL_get_error(ssl_, result) == SSL_ERROR_ZERO_RETURN;
  }
  void Close() {
    SSL_shutdown(ssl_);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  SSL* ssl_;
};

// Run with handshakes on the workers (0) and on a handshake thread (1,
// ReactorOptions::tls_handshake_threads): the contract is the same.
class StartTlsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("starttls");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    client_ctx_ =
        baton::testing::NewVerifyingClientContext(pki_.ca.certificate_file);
    ASSERT_NE(client_ctx_, nullptr);
    ReactorOptions options;
    options.threads = 2;
    // Below the echo's 32 KiB rounds: an upgraded connection pauses
    // reading with plaintext left in its engine, as a TLS listener's does.
    options.output_high_water = 16 << 10;
    options.tls_handshake_threads = GetParam();
    absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
    ASSERT_TRUE(reactor.ok()) << reactor.status();
    reactor_ = *std::move(reactor);
    ASSERT_TRUE(reactor_->Start().ok());
  }
  void TearDown() override {
    reactor_->Stop();
    reactor_->Wait();
    SSL_CTX_free(client_ctx_);
  }

  std::shared_ptr<TlsServerOptions> ServerOptions() const {
    auto tls = std::make_shared<TlsServerOptions>();
    tls->certificate_chain_file = pki_.server.certificate_file;
    tls->private_key_file = pki_.server.key_file;
    tls->handshake_timeout = absl::Seconds(60);
    return tls;
  }

  // A plain listener whose connections are SmtpHandlers upgrading with
  // `tls`; returns its port.
  int StartSmtp(std::shared_ptr<const TlsServerOptions> tls,
                bool from_timer = false) {
    Events* events = &events_;
    absl::StatusOr<int> port =
        reactor_->Listen(ListenOptions{}, [events, tls, from_timer] {
          return std::make_unique<SmtpHandler>(events, tls, from_timer);
        });
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : -1;
  }

  std::vector<absl::Status> StartResults() {
    std::lock_guard<std::mutex> lock(events_.mu);
    return events_.start_results;
  }
  std::vector<absl::Status> CloseReasons() {
    std::lock_guard<std::mutex> lock(events_.mu);
    return events_.close_reasons;
  }
  std::string Leaked() {
    std::lock_guard<std::mutex> lock(events_.mu);
    return events_.leaked;
  }

  // Echoes 256 KiB through the upgraded connection in 32 KiB rounds and
  // closes with close_notify.
  void EchoThenClose(StartTlsClient& client) {
    const std::string payload = Pattern(256 << 10, 7);
    for (size_t at = 0; at < payload.size(); at += 32 << 10) {
      const std::string piece = payload.substr(at, 32 << 10);
      ASSERT_TRUE(client.Send(piece));
      ASSERT_EQ(client.Receive(piece.size()), piece) << "at " << at;
    }
    client.Close();
    ASSERT_TRUE(events_.closed.WaitFor(kBound));
  }

  TestPki pki_;
  SSL_CTX* client_ctx_ = nullptr;
  std::unique_ptr<Reactor> reactor_;
  Events events_;
};

TEST_P(StartTlsTest, SmtpLikeUpgradeCarriesBytesExactlyBothWays) {
  const int port = StartSmtp(ServerOptions());
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("NOOP\r\nSTARTTLS\r\n"));
  ASSERT_EQ(client.ReadPlain(8 + kGoAhead.size()),
            absl::StrCat("250 ok\r\n", kGoAhead));
  ASSERT_TRUE(client.Handshake());
  // Written right after StartTls, before the handshake: encrypted, first.
  EXPECT_EQ(client.Receive(kSecureHello.size()), kSecureHello);
  EchoThenClose(client);

  EXPECT_EQ(events_.ready.load(), 1);
  EXPECT_EQ(Leaked(), "");
  const std::vector<absl::Status> results = StartResults();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok()) << results[0];
  // A second StartTls, in OnTlsReady, is refused.
  EXPECT_EQ(results[1].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(results[1].message(), "already speaks TLS"))
      << results[1];
  const std::vector<absl::Status> reasons = CloseReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_TRUE(reasons[0].ok()) << reasons[0];
  EXPECT_EQ(reactor_->Counters().tls_handshakes, 1u);
  // Every step of the handshake went to the handshake thread, or none.
  if (GetParam() > 0) {
    EXPECT_GT(reactor_->Counters().tls_handshake_steps_deferred, 0u);
  } else {
    EXPECT_EQ(reactor_->Counters().tls_handshake_steps_deferred, 0u);
  }
}

TEST_P(StartTlsTest, ClientHelloInTheCommandsSegmentGoesToTheEngine) {
  const int port = StartSmtp(ServerOptions());
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendWithClientHello("STARTTLS\r\n"));
  ASSERT_EQ(client.ReadPlain(kGoAhead.size()), kGoAhead);
  // Completes only if the ClientHello, which came in the same OnData as
  // the command, reached the engine.
  ASSERT_TRUE(client.FinishHandshake());
  EXPECT_EQ(client.Receive(kSecureHello.size()), kSecureHello);
  EchoThenClose(client);

  {
    std::lock_guard<std::mutex> lock(events_.mu);
    // The command and the ClientHello were one OnData.
    EXPECT_GT(events_.tail_at_upgrade, 0u);
  }
  EXPECT_EQ(Leaked(), "");
  EXPECT_EQ(events_.ready.load(), 1);
  const std::vector<absl::Status> reasons = CloseReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_TRUE(reasons[0].ok()) << reasons[0];
}

TEST_P(StartTlsTest, InputRetainedBeforeAStartTlsInATimerGoesToTheEngine) {
  const int port = StartSmtp(ServerOptions(), /*from_timer=*/true);
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendWithClientHello("STARTTLS\r\n"));
  ASSERT_EQ(client.ReadPlain(kGoAhead.size()), kGoAhead);
  ASSERT_TRUE(client.FinishHandshake());
  EXPECT_EQ(client.Receive(kSecureHello.size()), kSecureHello);
  EchoThenClose(client);

  {
    std::lock_guard<std::mutex> lock(events_.mu);
    EXPECT_GT(events_.tail_at_upgrade, 0u);
  }
  EXPECT_EQ(Leaked(), "");
  EXPECT_EQ(events_.ready.load(), 1);
  const std::vector<absl::Status> results = StartResults();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].ok()) << results[0];
}

// Reactor::Write, which queues for whoever serves the connection, follows
// the upgrade point too: before StartTls in plaintext, after it encrypted,
// each in order with the handler's own writes.
TEST_P(StartTlsTest, ReactorWritesAroundStartTlsKeepTheirSideAndOrder) {
  const int port = StartSmtp(ServerOptions());
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("STARTTLS MIX\r\n"));
  ASSERT_EQ(client.ReadPlain(kPlainViaReactor.size() + kGoAhead.size()),
            absl::StrCat(kPlainViaReactor, kGoAhead));
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(kSecureViaReactor.size() + kSecureHello.size()),
            absl::StrCat(kSecureViaReactor, kSecureHello));
  EchoThenClose(client);
  EXPECT_EQ(events_.ready.load(), 1);
}

TEST_P(StartTlsTest, ShutdownWriteRightAfterStartTlsWaitsForTheHandshake) {
  const int port = StartSmtp(ServerOptions());
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("STARTTLS SHUT\r\n"));
  ASSERT_EQ(client.ReadPlain(kGoAhead.size()), kGoAhead);
  ASSERT_TRUE(client.Handshake());
  EXPECT_EQ(client.Receive(kSecureHello.size()), kSecureHello);
  EXPECT_TRUE(client.ReceivedCloseNotify());
  client.Close();
  ASSERT_TRUE(events_.closed.WaitFor(kBound));
  EXPECT_EQ(events_.ready.load(), 1);
  const std::vector<absl::Status> reasons = CloseReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_TRUE(reasons[0].ok()) << reasons[0];
}

TEST_P(StartTlsTest, BadOptionsAndClosingAreRefusedAndTheConnectionStays) {
  auto bad = ServerOptions();
  bad->certificate_chain_file = pki_.server.certificate_file + ".missing";
  const int port = StartSmtp(bad);
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("STARTTLS\r\nNOOP\r\n"));
  const std::string refused = "454 TLS not available\r\n";
  // Still plaintext, and the line after the refused upgrade is served.
  ASSERT_EQ(client.ReadPlain(kGoAhead.size() + refused.size() + 8),
            absl::StrCat(kGoAhead, refused, "250 ok\r\n"));
  ASSERT_TRUE(client.SendPlain("QUIT\r\n"));
  ASSERT_EQ(client.ReadPlain(9), "221 bye\r\n");
  ASSERT_TRUE(events_.closed.WaitFor(kBound));

  const std::vector<absl::Status> results = StartResults();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(results[0].message(), "certificate"))
      << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(results[1].message(), "closing")) << results[1];
  EXPECT_EQ(events_.ready.load(), 0);
}

// A TLS listener's connection tries StartTls in OnOpen (refused, with null
// options too), then echoes.
class TlsFromTheStartHandler : public ConnectionHandler {
 public:
  TlsFromTheStartHandler(Events* events,
                         std::shared_ptr<const TlsServerOptions> tls)
      : events_(events), tls_(std::move(tls)) {}
  void OnOpen(Connection& conn) override {
    const absl::Status again = conn.StartTls(tls_);
    const absl::Status null =
        conn.StartTls(std::shared_ptr<const TlsServerOptions>());
    std::lock_guard<std::mutex> lock(events_->mu);
    events_->start_results.push_back(again);
    events_->start_results.push_back(null);
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(events_->mu);
      events_->close_reasons.push_back(reason);
    }
    events_->closed.Notify();
  }

 private:
  Events* const events_;
  const std::shared_ptr<const TlsServerOptions> tls_;
};

TEST_P(StartTlsTest, StartTlsOnATlsListenersConnectionIsRefused) {
  const std::shared_ptr<const TlsServerOptions> tls = ServerOptions();
  ListenOptions listen;
  listen.tls = tls;
  Events* events = &events_;
  absl::StatusOr<int> port = reactor_->Listen(listen, [events, tls] {
    return std::make_unique<TlsFromTheStartHandler>(events, tls);
  });
  ASSERT_TRUE(port.ok()) << port.status();
  baton::testing::TlsTestClient client(client_ctx_, *port, kBoundMs);
  ASSERT_TRUE(client.Handshake());
  ASSERT_TRUE(client.Send("still fine"));
  EXPECT_EQ(client.Receive(10), "still fine");
  client.Close();
  ASSERT_TRUE(events_.closed.WaitFor(kBound));

  const std::vector<absl::Status> results = StartResults();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(results[0].message(), "already speaks TLS"))
      << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StartTlsTest, FailedHandshakeAfterStartTlsIsOnClosesReason) {
  const int port = StartSmtp(ServerOptions());
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("STARTTLS\r\n"));
  ASSERT_EQ(client.ReadPlain(kGoAhead.size()), kGoAhead);
  // Not a TLS record.
  ASSERT_TRUE(client.SendPlain(std::string(64, 'x') + "\r\n"));
  ASSERT_TRUE(events_.closed.WaitFor(kBound));
  EXPECT_TRUE(ReadsToEnd(client.fd()));

  const std::vector<absl::Status> reasons = CloseReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0].code(), absl::StatusCode::kUnavailable) << reasons[0];
  EXPECT_EQ(events_.ready.load(), 0);
  EXPECT_EQ(Leaked(), "");
  EXPECT_EQ(reactor_->Counters().tls_handshake_failures, 1u);
}

TEST_P(StartTlsTest, StalledHandshakeAfterStartTlsTimesOut) {
  auto tls = ServerOptions();
  tls->handshake_timeout = absl::Milliseconds(50);
  const int port = StartSmtp(tls);
  StartTlsClient client(client_ctx_, port);
  ASSERT_GE(client.fd(), 0);
  ASSERT_EQ(client.ReadPlain(kGreeting.size()), kGreeting);
  ASSERT_TRUE(client.SendPlain("STARTTLS\r\n"));
  ASSERT_EQ(client.ReadPlain(kGoAhead.size()), kGoAhead);
  // No ClientHello: the handshake's timeout, counted from StartTls, ends
  // the connection.
  ASSERT_TRUE(events_.closed.WaitFor(kBound));
  EXPECT_TRUE(ReadsToEnd(client.fd()));
  const std::vector<absl::Status> reasons = CloseReasons();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0].code(), absl::StatusCode::kDeadlineExceeded)
      << reasons[0];
  EXPECT_TRUE(absl::StrContains(reasons[0].message(), "TLS handshake"))
      << reasons[0];
}

// The client role: a PostgreSQL-like exchange. The handler asks for TLS
// ("SSLREQ\r\n"), upgrades on the server's 'S' and writes "ping" at once
// (held until the handshake completes); "pong" back closes.
class SslRequestHandler : public ConnectionHandler {
 public:
  struct Result {
    std::mutex mu;
    absl::Status started = absl::UnknownError("StartTls not called");
    std::string received;  // after the upgrade
    absl::Status reason;
    std::atomic<int> ready{0};
    Notification closed;
  };
  SslRequestHandler(Result* result, std::shared_ptr<const TlsClientOptions> tls)
      : result_(result), tls_(std::move(tls)) {}
  void OnOpen(Connection& conn) override { conn.Write("SSLREQ\r\n"); }
  void OnData(Connection& conn, absl::string_view data) override {
    std::lock_guard<std::mutex> lock(result_->mu);
    if (!upgraded_) {
      if (data != "S") {
        result_->received = "unexpected plaintext: " + std::string(data);
        conn.Close();
        return;
      }
      upgraded_ = true;
      result_->started = conn.StartTls(tls_);
      conn.Write("ping");
      return;
    }
    result_->received.append(data.data(), data.size());
    if (result_->received.size() >= 4) conn.Close();
  }
  void OnTlsReady(Connection&) override { result_->ready.fetch_add(1); }
  void OnClose(Connection&, const absl::Status& reason) override {
    {
      std::lock_guard<std::mutex> lock(result_->mu);
      result_->reason = reason;
    }
    result_->closed.Notify();
  }

 private:
  Result* const result_;
  const std::shared_ptr<const TlsClientOptions> tls_;
  bool upgraded_ = false;
};

// A listening socket on 127.0.0.1, port 0.
int ListenLoopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

TEST_P(StartTlsTest, ClientRoleUpgradeOfAPlainConnect) {
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(
                server_ctx, pki_.server.certificate_file.c_str()),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(
                server_ctx, pki_.server.key_file.c_str(), SSL_FILETYPE_PEM),
            1);
  int port = 0;
  const int listener = ListenLoopback(&port);
  ASSERT_GE(listener, 0);

  // The server: plaintext request, 'S', then TLS on the same socket.
  std::string server_got;
  bool server_saw_close_notify = false;
  std::thread server([&] {
    pollfd ready{listener, POLLIN, 0};
    if (::poll(&ready, 1, kBoundMs) != 1) return;
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    timeval timeout{kBoundMs / 1000, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    absl::StatusOr<std::string> request = ReadExact(fd, 8);
    if (request.ok() && *request == "SSLREQ\r\n" && SendAll(fd, "S").ok()) {
      SSL* ssl = SSL_new(server_ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        char buffer[4];
        size_t n = 0;
        if (SSL_read_ex(ssl, buffer, sizeof(buffer), &n) == 1) {
          server_got.assign(buffer, n);
        }
        size_t written = 0;
        SSL_write_ex(ssl, "pong", 4, &written);
        char byte;
        const int end = SSL_read_ex(ssl, &byte, 1, &n);
        server_saw_close_notify =
            end == 0 && SSL_get_error(ssl, end) == SSL_ERROR_ZERO_RETURN;
      }
      SSL_free(ssl);
    }
    ::close(fd);
  });

  auto tls = std::make_shared<TlsClientOptions>();
  tls->ca_file = pki_.ca.certificate_file;
  tls->server_name = "localhost";
  ConnectOptions connect;
  connect.port = port;
  SslRequestHandler::Result result;
  absl::StatusOr<ConnectionId> id = reactor_->Connect(connect, [&result, tls] {
    return std::make_unique<SslRequestHandler>(&result, tls);
  });
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(result.closed.WaitFor(kBound));
  server.join();
  ::close(listener);
  SSL_CTX_free(server_ctx);

  std::lock_guard<std::mutex> lock(result.mu);
  EXPECT_TRUE(result.started.ok()) << result.started;
  EXPECT_EQ(result.ready.load(), 1);
  EXPECT_EQ(result.received, "pong");
  EXPECT_TRUE(result.reason.ok()) << result.reason;
  EXPECT_EQ(server_got, "ping");
  EXPECT_TRUE(server_saw_close_notify);
}

INSTANTIATE_TEST_SUITE_P(HandshakeThreads, StartTlsTest,
                         ::testing::Values(0, 1),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return param.param == 0
                                      ? std::string("OnWorkers")
                                      : std::string("OnHandshakeThread");
                         });

}  // namespace
}  // namespace baton
