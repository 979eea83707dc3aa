// TlsContext: option checks and the errors that name the bad field.
#include "lib/tls/tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/lib/tls/tls_pair.h"
#include "tests/util/test_certificates.h"

namespace baton::tls {
namespace {

using ::baton::testing::TestPki;
using ::testing::AllOf;
using testing::ClientOptions;
using ::testing::HasSubstr;
using testing::ServerOptions;

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = baton::testing::WriteTestPki("context");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }

  // A file holding `text`, under the test's temporary directory.
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path =
        std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static std::string Error(
      const absl::StatusOr<std::shared_ptr<const TlsContext>>& context) {
    EXPECT_FALSE(context.ok());
    if (!context.ok()) {
      EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument);
    }
    return std::string(context.status().message());
  }

  TestPki pki_;
};

TEST_F(TlsContextTest, ValidOptionsBuildBothSides) {
  absl::StatusOr<std::shared_ptr<const TlsContext>> server =
      TlsContext::ForServer(ServerOptions(pki_));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->is_server());
  EXPECT_EQ((*server)->handshake_timeout(), absl::Seconds(10));
  absl::StatusOr<std::shared_ptr<const TlsContext>> client =
      TlsContext::ForClient(ClientOptions(pki_));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_FALSE((*client)->is_server());
  EXPECT_TRUE((*client)->verify_peer());
  EXPECT_EQ((*client)->server_name(), "localhost");
  // The system store when no CA file is given.
  TlsClientOptions system = ClientOptions(pki_);
  system.ca_file.clear();
  EXPECT_TRUE(TlsContext::ForClient(system).ok());
}

TEST_F(TlsContextTest, MissingFilesAreNamed) {
  TlsServerOptions options = ServerOptions(pki_);
  options.certificate_chain_file = "/nonexistent/server.crt";
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              AllOf(HasSubstr("certificate_chain_file /nonexistent/server.crt"),
                    HasSubstr("No such file or directory")));
  options = ServerOptions(pki_);
  options.private_key_file.clear();
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("private_key_file is required"));
  TlsClientOptions client = ClientOptions(pki_);
  client.ca_file = "/nonexistent/ca.crt";
  EXPECT_THAT(Error(TlsContext::ForClient(client)),
              HasSubstr("ca_file /nonexistent/ca.crt: No such file"));
}

TEST_F(TlsContextTest, FilesWithoutPemContentAreRejected) {
  const std::string junk = WriteFile("junk.pem", "not a certificate\n");
  TlsServerOptions options = ServerOptions(pki_);
  options.certificate_chain_file = junk;
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("no valid PEM certificate"));
  options = ServerOptions(pki_);
  options.private_key_file = junk;
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("no valid unencrypted PEM private key"));
  TlsClientOptions client = ClientOptions(pki_);
  client.ca_file = junk;
  EXPECT_THAT(Error(TlsContext::ForClient(client)),
              HasSubstr("ca_file " + junk + ": no valid PEM CA certificate"));
}

TEST_F(TlsContextTest, KeyThatDoesNotMatchTheCertificateIsRejected) {
  TlsServerOptions options = ServerOptions(pki_);
  options.private_key_file = pki_.client.key_file;
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("does not match the certificate"));
  TlsClientOptions client = ClientOptions(pki_);
  client.certificate_chain_file = pki_.client.certificate_file;
  client.private_key_file = pki_.server.key_file;
  EXPECT_THAT(Error(TlsContext::ForClient(client)),
              HasSubstr("does not match the certificate"));
  client.private_key_file.clear();
  EXPECT_THAT(Error(TlsContext::ForClient(client)),
              HasSubstr("private_key_file is required"));
}

TEST_F(TlsContextTest, InvalidAlpnNamesAreRejected) {
  TlsServerOptions options = ServerOptions(pki_);
  options.alpn = {"http/1.1", ""};
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("must be 1..255 bytes"));
  TlsClientOptions client = ClientOptions(pki_);
  client.alpn = {std::string(256, 'x')};
  EXPECT_THAT(Error(TlsContext::ForClient(client)),
              HasSubstr("must be 1..255 bytes"));
  client.alpn = {std::string(255, 'x')};
  EXPECT_TRUE(TlsContext::ForClient(client).ok());
}

TEST_F(TlsContextTest, ClientVerificationNeedsACaFile) {
  TlsServerOptions options = ServerOptions(pki_);
  options.client_certificates = TlsClientCertificates::kRequest;
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("client_ca_file is required"));
  options.client_ca_file = pki_.ca.certificate_file;
  EXPECT_TRUE(TlsContext::ForServer(options).ok());
}

TEST_F(TlsContextTest, HandshakeTimeoutMustBePositive) {
  TlsServerOptions options = ServerOptions(pki_);
  options.handshake_timeout = absl::ZeroDuration();
  EXPECT_THAT(Error(TlsContext::ForServer(options)),
              HasSubstr("handshake_timeout must be positive"));
  TlsClientOptions client = ClientOptions(pki_);
  client.handshake_timeout = absl::InfiniteDuration();
  EXPECT_TRUE(TlsContext::ForClient(client).ok());
}

}  // namespace
}  // namespace baton::tls
