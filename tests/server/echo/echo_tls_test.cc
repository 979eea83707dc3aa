// //server:echo with --tls_cert / --tls_key: echo over TLS to OpenSSL's
// blocking client, and the flags' checks (both or neither, readable files,
// a certificate Listen accepts).
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/status/statusor.h"
#include "tests/util/test_certificates.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ChildServer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::Pattern;
using ::baton::testing::RunfilePath;
using ::baton::testing::TestPki;

const std::string& EchoBinary() {
  static const std::string path = RunfilePath("server/echo");
  return path;
}

// Runs the echo server with `args`, expecting it to refuse them: exit
// status 2 and `message` in its output.
void ExpectRefused(const std::vector<std::string>& args,
                   const std::string& message) {
  ChildServer server;
  // Never ready: Start fails once the child exits.
  (void)server.Start(EchoBinary(), args);
  absl::StatusOr<int> status = server.WaitExit(30000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status)) << *status;
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_NE(server.output().find(message), std::string::npos)
      << server.output();
}

class EchoTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("echo");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }
  TestPki pki_;
};

TEST_F(EchoTlsTest, EchoesOverTls) {
  ChildServer server;
  ASSERT_TRUE(
      server
          .Start(EchoBinary(), {"--port=0", "--threads=2",
                                "--tls_cert=" + pki_.server.certificate_file,
                                "--tls_key=" + pki_.server.key_file})
          .ok())
      << server.output();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, pki_.ca.certificate_file.c_str(),
                                          nullptr),
            1);
  const int fd = ConnectLoopback(server.port(), 30000);
  ASSERT_GE(fd, 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set1_host(ssl, "localhost");
  ASSERT_EQ(SSL_connect(ssl), 1);
  const std::string payload = Pattern(200000, 9);
  for (size_t at = 0; at < payload.size(); at += 16384) {
    const std::string piece = payload.substr(at, 16384);
    size_t written = 0;
    ASSERT_EQ(SSL_write_ex(ssl, piece.data(), piece.size(), &written), 1);
    std::string back;
    char buffer[16384];
    while (back.size() < piece.size()) {
      size_t n = 0;
      ASSERT_EQ(SSL_read_ex(ssl, buffer, piece.size() - back.size(), &n), 1);
      back.append(buffer, n);
    }
    ASSERT_TRUE(back == piece) << "at " << at;
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
  absl::StatusOr<int> status = server.StopWith(SIGTERM, 30000);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(EchoTlsTest, CertificateWithoutKeyIsRefused) {
  ExpectRefused({"--port=0", "--tls_cert=" + pki_.server.certificate_file},
                "--tls_cert and --tls_key go together");
}

TEST_F(EchoTlsTest, UnreadableKeyIsRefused) {
  ExpectRefused({"--port=0", "--tls_cert=" + pki_.server.certificate_file,
                 "--tls_key=/nonexistent/key.pem"},
                "--tls_key=/nonexistent/key.pem: cannot read");
}

TEST_F(EchoTlsTest, KeyThatDoesNotMatchIsRefused) {
  ExpectRefused({"--port=0", "--tls_cert=" + pki_.server.certificate_file,
                 "--tls_key=" + pki_.client.key_file},
                "cannot listen on");
}

}  // namespace
}  // namespace baton
