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
