// The //server:proxy binary with TLS on either side: terminating TLS from
// the clients (--tls_cert, --tls_key) to a plaintext echo, originating TLS
// (--upstream_tls, --upstream_ca) to //server:echo serving TLS, both at
// once, upstream sessions resumed (or not, with
// --upstream_tls_resumption=false), the upstream flags' checks, and
// SIGTERM's soft stop with a TLS client still talking. Certificates are
// made at test time.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;
using ::baton::testing::TestPki;

// Only a hang reaches these bounds.
constexpr int kBoundMs = 60000;

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// Whether each upstream connection resumed a TLS session, in order.
struct ResumedLog {
  std::mutex mu;
  std::vector<bool> resumed;  // guarded by mu
};

// Echoes, and records into `log` whether its connection resumed a session.
class RecordingEcho : public Echo {
 public:
  explicit RecordingEcho(ResumedLog* log) : log_(log) {}
  void OnOpen(Connection& conn) override {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->resumed.push_back(conn.tls() != nullptr && conn.tls()->resumed());
  }

 private:
  ResumedLog* const log_;
};

// A blocking TLS client that trusts `ca_file` only.
class TlsClient {
 public:
  TlsClient(const std::string& ca_file, int port)
      : ctx_(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free),
        loaded_(Trust(ctx_.get(), ca_file)),
        client_(ctx_.get(), port, kBoundMs) {}
  bool Handshake() { return loaded_ && client_.Handshake(); }
  bool Send(const std::string& data) { return client_.Send(data); }
  std::string Receive(size_t size) { return client_.Receive(size); }
  // `payload` there and back in 64 KiB steps; false at the first mismatch.
  bool RoundTrip(const std::string& payload) {
    for (size_t at = 0; at < payload.size(); at += 64 << 10) {
      const std::string piece = payload.substr(at, 64 << 10);
      if (!Send(piece) || Receive(piece.size()) != piece) return false;
    }
    return true;
  }
  // close_notify, then the socket.
  void Close() { client_.Close(); }

 private:
  static bool Trust(SSL_CTX* ctx, const std::string& ca_file) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    return SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1;
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_;
  bool loaded_;
  baton::testing::TlsTestClient client_;
};

class ProxyTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("proxy");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }
  // An in-process plaintext echo; returns its port.
  int StartPlainEcho() {
    echo_ = testing::StartReactor(testing::Threads(2));
    absl::StatusOr<int> port =
        echo_->Listen(ListenOptions{}, [] { return std::make_unique<Echo>(); });
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : -1;
  }
  std::vector<std::string> TerminateFlags() const {
    return {"--tls_cert=" + pki_.server.certificate_file,
            "--tls_key=" + pki_.server.key_file};
  }
  // Runs the proxy with `args`, expecting it to refuse them: a non-zero
  // exit and `message` in its output.
  void ExpectRefused(const std::vector<std::string>& args,
                     const std::string& message) {
    ChildServer proxy;
    (void)proxy.Start(RunfilePath("server/proxy"), args);  // never ready
    absl::StatusOr<int> status = proxy.WaitExit(kBoundMs);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << *status;
    EXPECT_NE(proxy.output().find(message), std::string::npos)
        << proxy.output();
    EXPECT_EQ(proxy.output().find("listening"), std::string::npos)
        << proxy.output();
  }

  TestPki pki_;
  std::unique_ptr<Reactor> echo_;
};

TEST_F(ProxyTlsTest, TerminatesTlsToAPlaintextUpstream) {
  const int echo_port = StartPlainEcho();
  std::vector<std::string> args = {
      "--port=0", "--threads=2",
      "--upstream=127.0.0.1:" + std::to_string(echo_port)};
  for (const std::string& flag : TerminateFlags()) args.push_back(flag);
  ChildServer proxy;
  ASSERT_TRUE(proxy.Start(RunfilePath("server/proxy"), args).ok())
      << proxy.output();
  for (int i = 0; i < 2; ++i) {
    TlsClient client(pki_.ca.certificate_file, proxy.port());
    ASSERT_TRUE(client.Handshake());
    EXPECT_TRUE(client.RoundTrip(Pattern(4 << 20, i))) << "client " << i;
    client.Close();
  }
  absl::StatusOr<int> status = proxy.StopWith(SIGTERM, kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
}

TEST_F(ProxyTlsTest, OriginatesTlsToATlsEcho) {
  ChildServer echo;
  ASSERT_TRUE(echo.Start(RunfilePath("server/echo"),
                         {"--port=0", "--threads=2",
                          "--tls_cert=" + pki_.server.certificate_file,
                          "--tls_key=" + pki_.server.key_file})
                  .ok())
      << echo.output();
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--port=0", "--threads=2",
                          "--upstream=127.0.0.1:" + std::to_string(echo.port()),
                          "--upstream_tls",
                          "--upstream_ca=" + pki_.ca.certificate_file})
                  .ok())
      << proxy.output();
  for (int i = 0; i < 2; ++i) {
    const int fd = ConnectLoopback(proxy.port(), kBoundMs);
    ASSERT_GE(fd, 0);
    const absl::Status echoed = EchoRoundTrip(fd, Pattern(4 << 20, 10 + i));
    EXPECT_TRUE(echoed.ok()) << echoed;
    ::close(fd);
  }
  absl::StatusOr<int> status = proxy.StopWith(SIGTERM, kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("upstream failures 0"), std::string::npos)
      << proxy.output();
}

// Each client connection makes one upstream connection; from the second
// on, the proxy offers the session its predecessor received.
class ProxyTlsResumptionTest : public ProxyTlsTest,
                               public ::testing::WithParamInterface<bool> {};

TEST_P(ProxyTlsResumptionTest, UpstreamSessionsAreResumedUnlessTurnedOff) {
  const bool resumption = GetParam();
  std::unique_ptr<Reactor> upstream =
      testing::StartReactor(testing::Threads(2));
  ListenOptions listen;
  auto tls = std::make_shared<TlsServerOptions>();
  tls->certificate_chain_file = pki_.server.certificate_file;
  tls->private_key_file = pki_.server.key_file;
  listen.tls = tls;
  ResumedLog log;
  absl::StatusOr<int> upstream_port = upstream->Listen(
      listen, [&log] { return std::make_unique<RecordingEcho>(&log); });
  ASSERT_TRUE(upstream_port.ok()) << upstream_port.status();
  std::vector<std::string> args = {
      "--port=0",
      "--threads=2",
      "--upstream=127.0.0.1:" + std::to_string(*upstream_port),
      "--upstream_tls",
      "--upstream_ca=" + pki_.ca.certificate_file,
      "--upstream_server_name=localhost"};
  if (!resumption) args.push_back("--upstream_tls_resumption=false");
  ChildServer proxy;
  ASSERT_TRUE(proxy.Start(RunfilePath("server/proxy"), args).ok())
      << proxy.output();
  constexpr int kClients = 3;
  for (int i = 0; i < kClients; ++i) {
    const int fd = ConnectLoopback(proxy.port(), kBoundMs);
    ASSERT_GE(fd, 0);
    const absl::Status echoed = EchoRoundTrip(fd, Pattern(64 << 10, 20 + i));
    EXPECT_TRUE(echoed.ok()) << "client " << i << ": " << echoed;
    ::close(fd);
  }
  absl::StatusOr<int> status = proxy.StopWith(SIGTERM, kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  upstream->Stop();
  upstream->Wait();
  const std::vector<bool>& resumed = log.resumed;  // the threads are gone
  ASSERT_EQ(resumed.size(), static_cast<size_t>(kClients));
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(resumed[i], resumption && i > 0) << "upstream connection " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Resumption, ProxyTlsResumptionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("Default")
                                          : std::string("TurnedOff");
                         });

TEST_F(ProxyTlsTest, TlsOnBothSidesWithAServerName) {
  ChildServer echo;
  ASSERT_TRUE(echo.Start(RunfilePath("server/echo"),
                         {"--port=0", "--threads=2",
                          "--tls_cert=" + pki_.server.certificate_file,
                          "--tls_key=" + pki_.server.key_file})
                  .ok())
      << echo.output();
  std::vector<std::string> args = {
      "--port=0",
      "--threads=2",
      "--upstream=127.0.0.1:" + std::to_string(echo.port()),
      "--upstream_tls",
      "--upstream_ca=" + pki_.ca.certificate_file,
      "--upstream_server_name=localhost"};
  for (const std::string& flag : TerminateFlags()) args.push_back(flag);
  ChildServer proxy;
  ASSERT_TRUE(proxy.Start(RunfilePath("server/proxy"), args).ok())
      << proxy.output();
  TlsClient client(pki_.ca.certificate_file, proxy.port());
  ASSERT_TRUE(client.Handshake());
  EXPECT_TRUE(client.RoundTrip(Pattern(3 << 20, 20)));
  client.Close();
  absl::StatusOr<int> status = proxy.StopWith(SIGTERM, kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
}

TEST_F(ProxyTlsTest, AnUpstreamItDoesNotTrustIsAFailedUpstream) {
  ChildServer echo;
  ASSERT_TRUE(echo.Start(RunfilePath("server/echo"),
                         {"--port=0", "--threads=1",
                          "--tls_cert=" + pki_.server.certificate_file,
                          "--tls_key=" + pki_.server.key_file})
                  .ok())
      << echo.output();
  absl::StatusOr<TestPki> other = baton::testing::WriteTestPki("stranger");
  ASSERT_TRUE(other.ok());
  ChildServer proxy;
  ASSERT_TRUE(proxy
                  .Start(RunfilePath("server/proxy"),
                         {"--port=0", "--threads=1",
                          "--upstream=127.0.0.1:" + std::to_string(echo.port()),
                          "--upstream_tls",
                          "--upstream_ca=" + other->ca.certificate_file})
                  .ok())
      << proxy.output();
  const int fd = ConnectLoopback(proxy.port(), kBoundMs);
  ASSERT_GE(fd, 0);
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed, nothing relayed
  ::close(fd);
  absl::StatusOr<int> status = proxy.StopWith(SIGTERM, kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_NE(proxy.output().find("upstream failures 1"), std::string::npos)
      << proxy.output();
}

TEST_F(ProxyTlsTest, ABadUpstreamCaIsAClearError) {
  const std::string garbage =
      std::string(::getenv("TEST_TMPDIR")) + "/not_a_ca.pem";
  {
    std::ofstream out(garbage);
    out << "this is not a certificate\n";
  }
  ExpectRefused({"--port=0", "--upstream=127.0.0.1:9", "--upstream_tls",
                 "--upstream_ca=" + garbage},
                "ca_file " + garbage + ": no valid PEM CA certificate");
  ExpectRefused({"--port=0", "--upstream=127.0.0.1:9", "--upstream_tls",
                 "--upstream_ca=/nonexistent/ca.pem"},
                "--upstream_ca=/nonexistent/ca.pem: cannot read");
  ExpectRefused({"--port=0", "--upstream=127.0.0.1:9",
                 "--upstream_ca=" + pki_.ca.certificate_file},
                "--upstream_ca needs --upstream_tls");
  ExpectRefused(
      {"--port=0", "--upstream=127.0.0.1:9", "--upstream_tls_resumption=false"},
      "--upstream_tls_resumption=false needs --upstream_tls");
  ExpectRefused({"--port=0", "--upstream=127.0.0.1:9",
                 "--tls_cert=" + pki_.server.certificate_file},
                "--tls_cert and --tls_key go together");
}

// SIGTERM stops accepting but lets a TLS pair finish: the client keeps
// talking through the proxy after the signal, then closes, and the proxy
// exits 0 with every pair finished.
TEST_F(ProxyTlsTest, SigtermSoftStopLetsATlsPairFinish) {
  const int echo_port = StartPlainEcho();
  std::vector<std::string> args = {
      "--port=0", "--threads=2", "--drain_timeout_ms=600000",
      "--upstream=127.0.0.1:" + std::to_string(echo_port)};
  for (const std::string& flag : TerminateFlags()) args.push_back(flag);
  ChildServer proxy;
  ASSERT_TRUE(proxy.Start(RunfilePath("server/proxy"), args).ok())
      << proxy.output();
  TlsClient client(pki_.ca.certificate_file, proxy.port());
  ASSERT_TRUE(client.Handshake());
  ASSERT_TRUE(client.RoundTrip(Pattern(1 << 20, 30)));
  ASSERT_EQ(::kill(proxy.pid(), SIGTERM), 0);
  EXPECT_TRUE(client.RoundTrip(Pattern(2 << 20, 31)));
  client.Close();
  absl::StatusOr<int> status = proxy.WaitExit(kBoundMs);
  ASSERT_TRUE(status.ok()) << proxy.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << proxy.output();
  EXPECT_NE(proxy.output().find("every pair finished"), std::string::npos)
      << proxy.output();
}

}  // namespace
}  // namespace baton
