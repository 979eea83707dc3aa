// Test helper: a blocking TLS client over loopback on OpenSSL's own API,
// the peer the reactor's TLS tests talk to. It checks the server as
// "localhost" (SNI and host name) with the caller's SSL_CTX.
#ifndef BATON_TESTS_UTIL_TLS_TEST_CLIENT_H_
#define BATON_TESTS_UTIL_TLS_TEST_CLIENT_H_

#include <openssl/ssl.h>

#include <cstddef>
#include <string>

namespace baton::testing {

// A client context that verifies the server's certificate against
// `ca_file` (PEM); null if the file cannot be loaded. The caller frees it
// (SSL_CTX_free).
SSL_CTX* NewVerifyingClientContext(const std::string& ca_file);

class TlsTestClient {
 public:
  // Connects to 127.0.0.1:`port` (giving up after `timeout_ms`); the
  // handshake waits for Handshake().
  TlsTestClient(SSL_CTX* ctx, int port, int timeout_ms);
  ~TlsTestClient();
  TlsTestClient(const TlsTestClient&) = delete;
  TlsTestClient& operator=(const TlsTestClient&) = delete;

  bool Handshake();
  int fd() const { return fd_; }
  bool Send(const std::string& data);
  // Reads exactly `size` plaintext bytes; fewer on EOF or error.
  std::string Receive(size_t size);
  // The server's close_notify came (a clean TLS end of stream).
  bool ReceivedCloseNotify();
  // Closes the socket with no close_notify.
  void CloseSocket();
  // Sends close_notify, then closes the socket.
  void Close();

 private:
  int fd_;
  SSL* ssl_ = nullptr;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_UTIL_TLS_TEST_CLIENT_H_
