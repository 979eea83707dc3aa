// TlsSession: a client and a server engine talking through memory buffers.
#include "lib/tls/tls_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>

#include "tests/lib/tls/tls_pair.h"
#include "tests/util/test_certificates.h"

namespace baton::tls {
namespace {

using ::baton::testing::TestPki;
using ::baton::testing::WriteTestPki;
using testing::ClientOptions;
using ::testing::HasSubstr;
using testing::MustSession;
using testing::Pattern;
using testing::Pump;
using testing::ServerOptions;
using testing::Side;
using State = TlsSession::State;

class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = WriteTestPki("baton-test");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }

  void Start(const TlsClientOptions& client_options,
             const TlsServerOptions& server_options) {
    client_.session = MustSession(TlsContext::ForClient(client_options));
    server_.session = MustSession(TlsContext::ForServer(server_options));
    ASSERT_NE(client_.session, nullptr);
    ASSERT_NE(server_.session, nullptr);
  }

  void Open() {
    ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
    Pump(client_, server_);
    ASSERT_EQ(client_.session->state(), State::kOpen)
        << client_.session->status();
    ASSERT_EQ(server_.session->state(), State::kOpen)
        << server_.session->status();
  }

  TestPki pki_;
  Side client_;
  Side server_;
};

TEST_F(TlsSessionTest, HandshakeVerifiesTheServerAndCarriesDataBothWays) {
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(client_.session->version(), "TLSv1.3");
  EXPECT_EQ(client_.session->peer_name(), "localhost");
  EXPECT_EQ(server_.session->requested_server_name(), "localhost");
  EXPECT_EQ(server_.session->peer_name(), "");  // no client certificate

  const std::string request = Pattern(1000, 1);
  const std::string reply = Pattern(1 << 20, 2);  // many 16 KiB records
  ASSERT_TRUE(client_.session->Write(request).ok());
  ASSERT_TRUE(server_.session->Write(reply).ok());
  Pump(client_, server_);
  EXPECT_EQ(server_.received, request);
  EXPECT_EQ(client_.received, reply);
  EXPECT_TRUE(client_.session->status().ok());
}

// One Read takes as many whole records as fit the buffer (a bulk stream
// reaches the handler in buffer-sized pieces, not 16 KiB ones), and the
// peer's close_notify behind them leaves the plaintext first, then kClosed.
TEST_F(TlsSessionTest, ReadFillsTheBufferAcrossRecordsThenSeesTheClose) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string reply = Pattern(100000, 3);  // seven records
  ASSERT_TRUE(server_.session->Write(reply).ok());
  server_.session->Close();
  std::string ciphertext;
  server_.session->TakeOutput(&ciphertext);
  client_.session->Feed(ciphertext);
  std::string buffer(65536, '\0');
  const size_t first = client_.session->Read(buffer.data(), buffer.size());
  EXPECT_EQ(first, buffer.size());  // four records and part of a fifth
  std::string got = buffer.substr(0, first);
  const size_t second = client_.session->Read(buffer.data(), buffer.size());
  got.append(buffer.data(), second);
  EXPECT_EQ(got, reply);
  EXPECT_EQ(client_.session->state(), State::kClosed);
  EXPECT_EQ(client_.session->Read(buffer.data(), buffer.size()), 0u);
}

TEST_F(TlsSessionTest, EveryCiphertextByteFedAloneStillGetsThrough) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  Pump(client_, server_, /*piece=*/1);
  ASSERT_EQ(client_.session->state(), State::kOpen);
  ASSERT_EQ(server_.session->state(), State::kOpen);
  const std::string payload = Pattern(40000, 3);  // three records
  ASSERT_TRUE(client_.session->Write(payload).ok());
  ASSERT_TRUE(server_.session->Write(payload).ok());
  Pump(client_, server_, /*piece=*/1);
  EXPECT_EQ(server_.received, payload);
  EXPECT_EQ(client_.received, payload);
}

TEST_F(TlsSessionTest, PlaintextLeftInsideTheEngineIsReportedUntilRead) {
  ASSERT_NO_FATAL_FAILURE(Open());
  const std::string payload = Pattern(3000, 4);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(server_.session->Write(payload.substr(i * 1000, 1000)).ok());
  }
  std::string ciphertext;
  server_.session->TakeOutput(&ciphertext);
  client_.session->Feed(ciphertext);

  // A small read leaves the rest of the record (SSL_pending) and two more
  // records inside the engine: the socket will not say so.
  char buffer[10];
  ASSERT_EQ(client_.session->Read(buffer, sizeof(buffer)), 10u);
  EXPECT_TRUE(client_.session->HasBufferedInput());
  std::string received(buffer, 10);
  for (int i = 0; i < 1000 && client_.session->HasBufferedInput(); ++i) {
    const size_t n = client_.session->Read(buffer, sizeof(buffer));
    received.append(buffer, n);
  }
  EXPECT_FALSE(client_.session->HasBufferedInput());
  EXPECT_EQ(received, payload);

  // Half a record: nothing to read and nothing to drain until the rest.
  ASSERT_TRUE(server_.session->Write("split record").ok());
  ciphertext.clear();
  server_.session->TakeOutput(&ciphertext);
  const size_t half = ciphertext.size() / 2;
  client_.session->Feed(absl::string_view(ciphertext).substr(0, half));
  EXPECT_EQ(client_.session->Read(buffer, sizeof(buffer)), 0u);
  EXPECT_FALSE(client_.session->HasBufferedInput());
  EXPECT_EQ(client_.session->state(), State::kOpen);
  client_.session->Feed(absl::string_view(ciphertext).substr(half));
  EXPECT_TRUE(client_.session->HasBufferedInput());
  ASSERT_EQ(client_.session->Read(buffer, sizeof(buffer)), 10u);
  EXPECT_EQ(std::string(buffer, 10), "split reco");
}

TEST_F(TlsSessionTest, WritesBeforeTheHandshakeAreSentWhenItCompletes) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  ASSERT_TRUE(client_.session->Write("early ").ok());
  ASSERT_TRUE(client_.session->Write("words").ok());
  client_.session->Close();
  EXPECT_FALSE(client_.session->Write("too late").ok());
  Pump(client_, server_);
  EXPECT_EQ(server_.received, "early words");
  EXPECT_EQ(server_.session->state(), State::kClosed);
  EXPECT_TRUE(server_.session->status().ok());
}

TEST_F(TlsSessionTest, AlpnPicksTheServersFirstChoiceAmongTheOffered) {
  TlsClientOptions client = ClientOptions(pki_);
  client.alpn = {"h2", "http/1.1"};
  TlsServerOptions server = ServerOptions(pki_);
  server.alpn = {"http/1.1", "h2"};
  ASSERT_NO_FATAL_FAILURE(Start(client, server));
  Pump(client_, server_);
  ASSERT_EQ(client_.session->state(), State::kOpen);
  EXPECT_EQ(client_.session->alpn(), "http/1.1");
  EXPECT_EQ(server_.session->alpn(), "http/1.1");
}

TEST_F(TlsSessionTest, AlpnWithNoCommonProtocolFailsBothSides) {
  TlsClientOptions client = ClientOptions(pki_);
  client.alpn = {"h2"};
  TlsServerOptions server = ServerOptions(pki_);
  server.alpn = {"http/1.1"};
  ASSERT_NO_FATAL_FAILURE(Start(client, server));
  Pump(client_, server_);
  EXPECT_EQ(server_.session->state(), State::kFailed);
  EXPECT_EQ(client_.session->state(), State::kFailed);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("peer alert: no application protocol"));
}

TEST_F(TlsSessionTest, ClientOfferingNoAlpnIsAccepted) {
  TlsServerOptions server = ServerOptions(pki_);
  server.alpn = {"http/1.1"};
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), server));
  Pump(client_, server_);
  ASSERT_EQ(server_.session->state(), State::kOpen)
      << server_.session->status();
  EXPECT_EQ(server_.session->alpn(), "");
}

TEST_F(TlsSessionTest, RequestedClientCertificateIsOptional) {
  TlsServerOptions server = ServerOptions(pki_);
  server.client_certificates = TlsClientCertificates::kRequest;
  server.client_ca_file = pki_.ca.certificate_file;
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), server));
  Pump(client_, server_);
  ASSERT_EQ(server_.session->state(), State::kOpen)
      << server_.session->status();
  ASSERT_TRUE(client_.session->Write("ping").ok());
  Pump(client_, server_);
  EXPECT_EQ(server_.received, "ping");
  EXPECT_EQ(client_.session->state(), State::kOpen);
  EXPECT_EQ(server_.session->peer_name(), "");
}

// Runs a first handshake and a second one offering the first's session,
// against one server context; returns whether the second was resumed and
// sets `*ticket_issued` to whether the first client got a session ticket.
bool SecondHandshakeResumes(const TestPki& pki, bool resumption,
                            bool* ticket_issued) {
  TlsServerOptions server_options = ServerOptions(pki);
  server_options.session_resumption = resumption;
  const absl::StatusOr<std::shared_ptr<const TlsContext>> server_context =
      TlsContext::ForServer(server_options);
  const absl::StatusOr<std::shared_ptr<const TlsContext>> client_context =
      TlsContext::ForClient(ClientOptions(pki));
  Side first_client{MustSession(client_context), ""};
  Side first_server{MustSession(server_context), ""};
  if (first_client.session == nullptr || first_server.session == nullptr) {
    return false;
  }
  Pump(first_client, first_server);
  // Data after the handshake: the client reads the server's tickets, which
  // TLS 1.3 sends after it.
  EXPECT_TRUE(first_server.session->Write("hello").ok());
  Pump(first_client, first_server);
  EXPECT_EQ(first_client.received, "hello");
  SSL_SESSION* session =
      SSL_get1_session(first_client.session->native_handle());
  EXPECT_NE(session, nullptr);
  *ticket_issued = session != nullptr && SSL_SESSION_has_ticket(session) == 1;

  Side second_client{MustSession(client_context), ""};
  Side second_server{MustSession(server_context), ""};
  if (session != nullptr) {
    SSL_set_session(second_client.session->native_handle(), session);
    SSL_SESSION_free(session);
  }
  Pump(second_client, second_server);
  EXPECT_EQ(second_client.session->state(), State::kOpen)
      << second_client.session->status();
  return SSL_session_reused(second_client.session->native_handle()) == 1;
}

TEST_F(TlsSessionTest, ReturningClientResumesByDefault) {
  bool ticket_issued = false;
  EXPECT_TRUE(SecondHandshakeResumes(pki_, true, &ticket_issued));
  EXPECT_TRUE(ticket_issued);
}

TEST_F(TlsSessionTest, WithoutResumptionEveryHandshakeIsFullAndNoTicket) {
  bool ticket_issued = true;
  EXPECT_FALSE(SecondHandshakeResumes(pki_, false, &ticket_issued));
  EXPECT_FALSE(ticket_issued);
}

TEST_F(TlsSessionTest, ServerNameMismatchFailsVerification) {
  TlsClientOptions client = ClientOptions(pki_);
  client.server_name = "example.com";
  ASSERT_NO_FATAL_FAILURE(Start(client, ServerOptions(pki_)));
  Pump(client_, server_);
  EXPECT_EQ(server_.session->requested_server_name(), "example.com");
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_EQ(client_.session->status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("certificate verify failed: hostname mismatch"));
  EXPECT_EQ(server_.session->state(), State::kFailed);
  EXPECT_FALSE(server_.session->peer_alert().empty());
}

TEST_F(TlsSessionTest, IpLiteralIsCheckedAgainstTheCertificatesIpEntries) {
  TlsClientOptions client = ClientOptions(pki_);
  client.server_name = "127.0.0.1";
  ASSERT_NO_FATAL_FAILURE(Start(client, ServerOptions(pki_)));
  Pump(client_, server_);
  ASSERT_EQ(client_.session->state(), State::kOpen)
      << client_.session->status();
  EXPECT_EQ(client_.session->peer_name(), "127.0.0.1");
  EXPECT_EQ(server_.session->requested_server_name(), "");  // no SNI for IPs

  client.server_name = "127.0.0.2";
  ASSERT_NO_FATAL_FAILURE(Start(client, ServerOptions(pki_)));
  Pump(client_, server_);
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("IP address mismatch"));
}

TEST_F(TlsSessionTest, CertificateFromAnotherAuthorityIsRejected) {
  absl::StatusOr<TestPki> other = WriteTestPki("other");
  ASSERT_TRUE(other.ok()) << other.status();
  TlsClientOptions client = ClientOptions(pki_);
  client.ca_file = other->ca.certificate_file;
  ASSERT_NO_FATAL_FAILURE(Start(client, ServerOptions(pki_)));
  Pump(client_, server_);
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_EQ(client_.session->status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("certificate verify failed: unable to get local "
                        "issuer certificate"));
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("sent alert: unknown CA"));
  // The server hears why.
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_EQ(server_.session->peer_alert(), "unknown CA");
  EXPECT_EQ(server_.session->status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(server_.session->status().message(),
              HasSubstr("peer alert: unknown CA"));
}

TEST_F(TlsSessionTest, SelfSignedCertificateVerifiesAgainstItself) {
  absl::StatusOr<baton::testing::CertificateFiles> self =
      baton::testing::WriteSelfSignedCertificate("self");
  ASSERT_TRUE(self.ok()) << self.status();
  TlsServerOptions server;
  server.certificate_chain_file = self->certificate_file;
  server.private_key_file = self->key_file;
  TlsClientOptions client;
  client.ca_file = self->certificate_file;
  client.server_name = "localhost";
  ASSERT_NO_FATAL_FAILURE(Start(client, server));
  Pump(client_, server_);
  EXPECT_EQ(client_.session->state(), State::kOpen)
      << client_.session->status();
}

TEST_F(TlsSessionTest, RequiredClientCertificateIsVerified) {
  TlsServerOptions server = ServerOptions(pki_);
  server.client_certificates = TlsClientCertificates::kRequire;
  server.client_ca_file = pki_.ca.certificate_file;
  TlsClientOptions client = ClientOptions(pki_);
  client.certificate_chain_file = pki_.client.certificate_file;
  client.private_key_file = pki_.client.key_file;
  ASSERT_NO_FATAL_FAILURE(Start(client, server));
  Pump(client_, server_);
  ASSERT_EQ(server_.session->state(), State::kOpen)
      << server_.session->status();
  EXPECT_EQ(server_.session->peer_name(), "CN=baton-test-client");
}

TEST_F(TlsSessionTest, MissingClientCertificateFailsWhenRequired) {
  TlsServerOptions server = ServerOptions(pki_);
  server.client_certificates = TlsClientCertificates::kRequire;
  server.client_ca_file = pki_.ca.certificate_file;
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), server));
  Pump(client_, server_);
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_EQ(server_.session->status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(server_.session->status().message(),
              HasSubstr("peer did not return a certificate"));
  // TLS 1.3: the client finished first and learns of it from the alert.
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_EQ(client_.session->status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client_.session->peer_alert(), "certificate required");
}

TEST_F(TlsSessionTest, CloseNotifyEndsEachDirectionCleanly) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(client_.session->Write("last words").ok());
  client_.session->Close();
  Pump(client_, server_);
  EXPECT_EQ(server_.received, "last words");
  EXPECT_EQ(server_.session->state(), State::kClosed);
  EXPECT_TRUE(server_.session->status().ok());
  // The other direction still works until the server closes too.
  ASSERT_TRUE(server_.session->Write("reply").ok());
  server_.session->Close();
  Pump(client_, server_);
  EXPECT_EQ(client_.received, "reply");
  EXPECT_EQ(client_.session->state(), State::kClosed);
  // The end of input after close_notify is no truncation.
  client_.session->FeedEof();
  testing::Drain(client_);
  EXPECT_EQ(client_.session->state(), State::kClosed);
}

TEST_F(TlsSessionTest, EndOfInputWithoutCloseNotifyIsTruncation) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(server_.session->Write("partial").ok());
  Pump(client_, server_);
  client_.session->FeedEof();
  testing::Drain(client_);
  EXPECT_EQ(client_.received, "partial");
  ASSERT_EQ(client_.session->state(), State::kTruncated);
  EXPECT_EQ(client_.session->status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(client_.session->status().message(), HasSubstr("truncated"));
}

TEST_F(TlsSessionTest, EndOfInputDuringTheHandshakeFailsIt) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  testing::Drain(client_);  // the ClientHello is out; no answer comes
  client_.session->FeedEof();
  testing::Drain(client_);
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("connection closed by the peer"));
}

TEST_F(TlsSessionTest, RandomBytesInsteadOfAClientHelloFailCleanly) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  server_.session->Feed(Pattern(4096, 5));
  testing::Drain(server_);
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_EQ(server_.session->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server_.session->status().message(),
              HasSubstr("TLS handshake failed: "));
  EXPECT_FALSE(server_.session->plain_http_request());
  EXPECT_FALSE(server_.session->Write("x").ok());
}

TEST_F(TlsSessionTest, PlainHttpRequestIsRecognised) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  server_.session->Feed("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  testing::Drain(server_);
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_TRUE(server_.session->plain_http_request());
  EXPECT_THAT(server_.session->status().message(),
              HasSubstr("plain HTTP request sent to a TLS port"));
  // No TLS alert goes back to a plaintext client.
  EXPECT_EQ(server_.session->PendingOutput(), 0u);
}

TEST_F(TlsSessionTest, PlainProxyConnectRequestIsRecognised) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  server_.session->Feed("CONNECT example.com:443 HTTP/1.1\r\n\r\n");
  testing::Drain(server_);
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_TRUE(server_.session->plain_http_request());
}

TEST_F(TlsSessionTest, ServerRefusesClientInitiatedRenegotiation) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  // Renegotiation exists only up to TLS 1.2.
  SSL_set_max_proto_version(client_.session->native_handle(), TLS1_2_VERSION);
  Pump(client_, server_);
  ASSERT_EQ(server_.session->state(), State::kOpen);
  ASSERT_EQ(server_.session->version(), "TLSv1.2");

  // A client that does not refuse it asks for a new handshake.
  SSL* client = client_.session->native_handle();
  SSL_clear_options(client, SSL_OP_NO_RENEGOTIATION);
  ASSERT_EQ(SSL_renegotiate(client), 1);
  SSL_do_handshake(client);
  Pump(client_, server_);
  EXPECT_EQ(SSL_num_renegotiations(server_.session->native_handle()), 0);
  ASSERT_EQ(client_.session->state(), State::kFailed);
  EXPECT_THAT(client_.session->status().message(),
              HasSubstr("no renegotiation"));
}

TEST_F(TlsSessionTest, ClientRefusesServerInitiatedRenegotiation) {
  ASSERT_NO_FATAL_FAILURE(Start(ClientOptions(pki_), ServerOptions(pki_)));
  SSL_set_max_proto_version(client_.session->native_handle(), TLS1_2_VERSION);
  Pump(client_, server_);
  ASSERT_EQ(client_.session->state(), State::kOpen);

  // A server that does not refuse it sends a HelloRequest.
  SSL* server = server_.session->native_handle();
  SSL_clear_options(server, SSL_OP_NO_RENEGOTIATION);
  ASSERT_EQ(SSL_renegotiate(server), 1);
  SSL_do_handshake(server);
  Pump(client_, server_);
  EXPECT_EQ(SSL_num_renegotiations(client_.session->native_handle()), 0);
  ASSERT_EQ(server_.session->state(), State::kFailed);
  EXPECT_EQ(server_.session->peer_alert(), "no renegotiation");
}

}  // namespace
}  // namespace baton::tls
