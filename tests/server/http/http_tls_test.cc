// //server:http with --tls_cert / --tls_key: a file served over HTTPS
// (SendFile encrypted) to OpenSSL's blocking client, and the flags' checks.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;
using ::baton::testing::TestPki;

TEST(HttpTlsTest, ServesAFileOverTls) {
  absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("http");
  ASSERT_TRUE(pki.ok()) << pki.status();
  const std::string root = ::testing::TempDir() + "/https_root";
  ::mkdir(root.c_str(), 0755);
  const std::string body = Pattern(300000, 5);
  {
    std::ofstream out(root + "/file.bin", std::ios::binary);
    out << body;
  }
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=2", "--root=" + root,
                          "--tls_cert=" + pki->server.certificate_file,
                          "--tls_key=" + pki->server.key_file})
                  .ok())
      << server.output();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, pki->ca.certificate_file.c_str(),
                                          nullptr),
            1);
  const int fd = ConnectLoopback(server.port(), 30000);
  ASSERT_GE(fd, 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  ASSERT_EQ(SSL_connect(ssl), 1);
  const std::string request =
      "GET /file.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(ssl, request.data(), request.size(), &written), 1);
  std::string response;
  char buffer[16384];
  for (int i = 0; i < 100000; ++i) {
    size_t n = 0;
    if (SSL_read_ex(ssl, buffer, sizeof(buffer), &n) != 1) break;
    response.append(buffer, n);
  }
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 200);
  const size_t head_end = response.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_NE(response.find(absl::StrCat("Content-Length: ", body.size())),
            std::string::npos);
  EXPECT_TRUE(response.substr(head_end + 4) == body)
      << response.size() - head_end - 4 << " body bytes";
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 30000);
  ASSERT_TRUE(status.ok()) << status.status();
}

// A plain HTTP request on the HTTPS port is answered in plaintext, as
// nginx does, and the connection closed.
TEST(HttpTlsTest, PlainHttpRequestGetsA400InPlaintext) {
  absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("plain");
  ASSERT_TRUE(pki.ok()) << pki.status();
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--threads=2", "--response_size=10",
                          "--tls_cert=" + pki->server.certificate_file,
                          "--tls_key=" + pki->server.key_file})
                  .ok())
      << server.output();
  const std::string body =
      "400 Bad Request: a plain HTTP request was sent to an HTTPS port\n";
  const std::string expected = absl::StrCat(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
      "Content-Length: ",
      body.size(), "\r\nConnection: close\r\n\r\n", body);
  for (const char* method : {"GET", "POST", "HEAD"}) {
    const int fd = ConnectLoopback(server.port(), 30000);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(baton::testing::SendAll(
                    fd, absl::StrCat(method,
                                     " / HTTP/1.1\r\nHost: localhost\r\n"
                                     "Content-Length: 0\r\n\r\n"))
                    .ok());
    absl::StatusOr<std::string> got = baton::testing::ReadToEof(fd, 4096);
    ::close(fd);
    ASSERT_TRUE(got.ok()) << method << ": " << got.status();
    EXPECT_EQ(*got, expected) << method;
  }
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 30000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

// --tls_handshake_timeout_ms closes a connection whose handshake stalls
// (here: a TLS record header and nothing more).
TEST(HttpTlsTest, StalledHandshakeIsClosedAtTheHandshakeTimeout) {
  absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("stall");
  ASSERT_TRUE(pki.ok()) << pki.status();
  ChildServer server;
  ASSERT_TRUE(server
                  .Start(RunfilePath("server/http"),
                         {"--port=0", "--response_size=10",
                          "--tls_handshake_timeout_ms=100",
                          "--keepalive_timeout_ms=3600000",
                          "--tls_cert=" + pki->server.certificate_file,
                          "--tls_key=" + pki->server.key_file})
                  .ok())
      << server.output();
  const int fd = ConnectLoopback(server.port(), 30000);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      baton::testing::SendAll(fd, std::string("\x16\x03\x01\x02\x00", 5)).ok());
  // Only the handshake timeout closes it (the idle timeout is an hour).
  const baton::testing::End end = baton::testing::WaitForEnd(fd, 30000);
  ::close(fd);
  EXPECT_TRUE(baton::testing::EofOrReset(end)) << baton::testing::EndName(end);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 30000);
  ASSERT_TRUE(status.ok()) << status.status();
}

TEST(HttpTlsTest, ZeroHandshakeTimeoutIsRefused) {
  ChildServer server;
  (void)server.Start(RunfilePath("server/http"),
                     {"--port=0", "--tls_handshake_timeout_ms=0"});
  absl::StatusOr<int> status = server.WaitExit(30000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << *status;
  EXPECT_NE(server.output().find("--tls_handshake_timeout_ms=0"),
            std::string::npos)
      << server.output();
}

TEST(HttpTlsTest, KeyWithoutCertificateIsRefused) {
  ChildServer server;
  (void)server.Start(RunfilePath("server/http"),
                     {"--port=0", "--tls_key=/some/key.pem"});
  absl::StatusOr<int> status = server.WaitExit(30000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << *status;
  EXPECT_NE(server.output().find("--tls_cert and --tls_key go together"),
            std::string::npos)
      << server.output();
}

}  // namespace
}  // namespace baton
