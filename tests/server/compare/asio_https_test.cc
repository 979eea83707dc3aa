// //server/compare:asio_https, the Boost.Asio HTTPS baseline, in both
// threading models: keep-alive requests answered byte for byte over TLS
// with a certificate made at test time, Connection: close and HTTP/1.0
// ending with close_notify, request bodies skipped, a clean exit on
// SIGTERM, and the flags' checks.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"
#include "tests/util/tls_test_client.h"

namespace baton {
namespace {

using ::baton::testing::CertificateFiles;
using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::RunfilePath;
using ::baton::testing::TlsTestClient;

constexpr int kTimeoutMs = 30000;
// "Sun, 06 Dec 2026 13:38:12 GMT": always 29 bytes.
constexpr size_t kDateSize = 29;

// The response asio_https gives, with a placeholder Date value
// (ExpectResponse takes the real one from what came).
std::string Response(size_t body_size, bool keep_alive, bool with_body = true) {
  return absl::StrCat(
      "HTTP/1.1 200 OK\r\nServer: asio\r\nDate: ", std::string(kDateSize, '?'),
      "\r\nContent-Length: ", body_size,
      "\r\nContent-Type: text/plain\r\nConnection: ",
      keep_alive ? "keep-alive" : "close", "\r\n\r\n",
      with_body ? std::string(body_size, 'x') : "");
}

// Reads one response of `expected`'s size and compares it with `expected`,
// whose Date value (any 29 bytes there) is taken from what came.
void ExpectResponse(TlsTestClient& client, const std::string& expected) {
  const std::string got = client.Receive(expected.size());
  ASSERT_EQ(got.size(), expected.size()) << got;
  const size_t date = expected.find("Date: ") + 6;
  const std::string their_date = got.substr(date, kDateSize);
  EXPECT_TRUE(std::regex_match(
      their_date, std::regex("[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
                             "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT")))
      << their_date;
  std::string want = expected;
  want.replace(date, kDateSize, their_date);
  EXPECT_EQ(got, want);
}

class AsioHttpsTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    absl::StatusOr<CertificateFiles> cert =
        baton::testing::WriteSelfSignedCertificate("asio-https");
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_ = *cert;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ASSERT_EQ(SSL_CTX_load_verify_locations(
                  ctx_, cert_.certificate_file.c_str(), nullptr),
              1);
  }
  void TearDown() override { SSL_CTX_free(ctx_); }

  void StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--port=0", "--threads=2", std::string("--model=") + GetParam(),
        "--tls_cert=" + cert_.certificate_file, "--tls_key=" + cert_.key_file};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(
        server_.Start(RunfilePath("server/compare/asio_https"), args).ok())
        << server_.output();
  }

  std::unique_ptr<TlsTestClient> Connect() {
    auto client =
        std::make_unique<TlsTestClient>(ctx_, server_.port(), kTimeoutMs);
    EXPECT_TRUE(client->Handshake()) << server_.output();
    return client;
  }

  void ExpectCleanExit() {
    absl::StatusOr<int> status = server_.StopWith(SIGTERM, kTimeoutMs);
    ASSERT_TRUE(status.ok()) << status.status() << server_.output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << *status << server_.output();
  }

  CertificateFiles cert_;
  SSL_CTX* ctx_ = nullptr;
  ChildServer server_;
};

constexpr char kGet[] = "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n";

// Two keep-alive requests and one with Connection: close on each of several
// connections (so both threads serve some), every byte checked; the close
// ends with the server's close_notify.
TEST_P(AsioHttpsTest, KeepAliveThenConnectionClose) {
  StartServer();
  const std::string keep = Response(128, true);
  const std::string last = Response(128, false);
  for (int c = 0; c < 6; ++c) {
    std::unique_ptr<TlsTestClient> client = Connect();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(client->Send(kGet));
      ExpectResponse(*client, keep);
    }
    ASSERT_TRUE(client->Send(
        "GET /b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    ExpectResponse(*client, last);
    EXPECT_TRUE(client->ReceivedCloseNotify()) << "connection " << c;
    client->Close();
  }
  ExpectCleanExit();
}

// Requests sent in one write are answered in order; --response_size sets
// the body; HEAD gets the head only.
TEST_P(AsioHttpsTest, PipelinedRequestsAndResponseSize) {
  StartServer({"--response_size=20000"});
  std::unique_ptr<TlsTestClient> client = Connect();
  ASSERT_TRUE(client->Send(
      absl::StrCat(kGet, "HEAD /h HTTP/1.1\r\nHost: localhost\r\n\r\n", kGet,
                   "GET /c HTTP/1.1\r\nconnection: Close\r\n\r\n")));
  ExpectResponse(*client, Response(20000, true));
  ExpectResponse(*client, Response(20000, true, /*with_body=*/false));
  ExpectResponse(*client, Response(20000, true));
  ExpectResponse(*client, Response(20000, false));
  EXPECT_TRUE(client->ReceivedCloseNotify());
  client->Close();
  ExpectCleanExit();
}

// HTTP/1.0 closes unless it asks for keep-alive.
TEST_P(AsioHttpsTest, Http10ClosesUnlessAskedToKeepAlive) {
  StartServer({"--response_size=5"});
  std::unique_ptr<TlsTestClient> client = Connect();
  ASSERT_TRUE(
      client->Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / "
                   "HTTP/1.0\r\n\r\n"));
  ExpectResponse(*client, Response(5, true));
  ExpectResponse(*client, Response(5, false));
  EXPECT_TRUE(client->ReceivedCloseNotify());
  client->Close();
  ExpectCleanExit();
}

// A request body (Content-Length) is skipped, whether it came with the head
// or after it, and the request after it is answered too. The first body
// would be a bad request were it read as one.
TEST_P(AsioHttpsTest, SkipsRequestBodies) {
  StartServer({"--response_size=3"});
  std::unique_ptr<TlsTestClient> client = Connect();
  const std::string big(100000, 'b');
  ASSERT_TRUE(client->Send(absl::StrCat(
      "POST /p HTTP/1.1\r\nContent-Length: 7\r\n\r\na b\r\n\r\n",
      "POST /q HTTP/1.1\r\nContent-Length: ", big.size(), "\r\n\r\n")));
  ExpectResponse(*client, Response(3, true));
  ASSERT_TRUE(client->Send(big + kGet));
  ExpectResponse(*client, Response(3, true));
  ExpectResponse(*client, Response(3, true));
  client->Close();
  ExpectCleanExit();
}

// A malformed request line gets a 400 and the connection closes.
TEST_P(AsioHttpsTest, BadRequestIsAnswered400AndClosed) {
  StartServer();
  std::unique_ptr<TlsTestClient> client = Connect();
  ASSERT_TRUE(client->Send("NONSENSE\r\n\r\n"));
  const std::string expected =
      absl::StrCat("HTTP/1.1 400 Bad Request\r\nServer: asio\r\nDate: ",
                   std::string(kDateSize, '?'),
                   "\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n"
                   "Connection: close\r\n\r\n");
  ExpectResponse(*client, expected);
  EXPECT_TRUE(client->ReceivedCloseNotify());
  client->Close();
  ExpectCleanExit();
}

// SIGTERM with connections still open (idle and mid-handshake) exits 0.
TEST_P(AsioHttpsTest, StopsWithOpenConnections) {
  StartServer();
  std::unique_ptr<TlsTestClient> idle = Connect();
  ASSERT_TRUE(idle->Send(kGet));
  ExpectResponse(*idle, Response(128, true));
  TlsTestClient no_handshake(ctx_, server_.port(), kTimeoutMs);
  ASSERT_GE(no_handshake.fd(), 0);
  ExpectCleanExit();
}

// Every connection is a full handshake: a client offering the session of
// its previous connection (TLS 1.2: session ID or ticket; TLS 1.3: a
// ticket, had one been sent) is not resumed.
TEST_P(AsioHttpsTest, NoSessionIsResumed) {
  StartServer();
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SSL_CTX_set_max_proto_version(ctx_, version);
    SSL_SESSION* previous = nullptr;
    for (int c = 0; c < 2; ++c) {
      const int fd = ConnectLoopback(server_.port(), kTimeoutMs);
      ASSERT_GE(fd, 0);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      SSL_set_tlsext_host_name(ssl, "localhost");
      if (previous != nullptr) SSL_set_session(ssl, previous);
      ASSERT_EQ(SSL_connect(ssl), 1);
      EXPECT_EQ(SSL_version(ssl), version);
      if (previous != nullptr) {
        EXPECT_EQ(SSL_session_reused(ssl), 0) << "version " << version;
      }
      // A response read, so TLS 1.3 tickets sent after the handshake have
      // arrived before the session is taken.
      size_t written = 0;
      ASSERT_EQ(SSL_write_ex(ssl, kGet, sizeof(kGet) - 1, &written), 1);
      const size_t size = Response(128, true).size();
      std::string got;
      char buffer[4096];
      while (got.size() < size) {
        size_t n = 0;
        if (SSL_read_ex(ssl, buffer,
                        std::min(sizeof(buffer), size - got.size()), &n) != 1) {
          break;
        }
        got.append(buffer, n);
      }
      EXPECT_EQ(got.size(), size);
      SSL_SESSION_free(previous);
      previous = SSL_get1_session(ssl);
      SSL_shutdown(ssl);
      SSL_free(ssl);
      ::close(fd);
    }
    SSL_SESSION_free(previous);
  }
  ExpectCleanExit();
}

INSTANTIATE_TEST_SUITE_P(Models, AsioHttpsTest,
                         ::testing::Values("shared", "per_thread"));

// Bad flags and files are refused with a message naming the problem.
TEST(AsioHttpsFlagsTest, RefusesBadFlagsAndFiles) {
  absl::StatusOr<CertificateFiles> cert =
      baton::testing::WriteSelfSignedCertificate("asio-flags");
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<CertificateFiles> other =
      baton::testing::WriteSelfSignedCertificate("asio-other");
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string c = "--tls_cert=" + cert->certificate_file;
  const std::string k = "--tls_key=" + cert->key_file;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--port=0"}, "--tls_cert and --tls_key are required"},
      {{"--port=0", c}, "--tls_cert and --tls_key are required"},
      {{"--port=0", c, "--tls_key=/nonexistent/key.pem"},
       "--tls_key=/nonexistent/key.pem: cannot read"},
      {{"--port=0", "--tls_cert=/nonexistent/cert.pem", k},
       "--tls_cert=/nonexistent/cert.pem: cannot read"},
      {{"--port=0", "--tls_cert=" + cert->key_file, k},
       "no valid PEM certificate"},
      {{"--port=0", c, "--tls_key=" + other->key_file},
       "no valid unencrypted PEM private key matching --tls_cert"},
      {{"--port=0", c, k, "--model=lots"}, "--model=lots: must be shared or "},
      {{"--port=0", c, k, "--response_size=-1"}, "--response_size=-1: must be"},
      {{c, k, "--address=unix:/tmp/x.sock"}, "listens on TCP only"},
  };
  for (const Case& test : cases) {
    ChildServer server;
    EXPECT_FALSE(
        server.Start(RunfilePath("server/compare/asio_https"), test.args).ok())
        << test.args.back();
    absl::StatusOr<int> status = server.WaitExit(kTimeoutMs);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << *status;
    EXPECT_NE(server.output().find(test.message), std::string::npos)
        << test.args.back() << ": " << server.output();
  }
}

}  // namespace
}  // namespace baton
