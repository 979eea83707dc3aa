#include "tests/util/tls_test_client.h"

#include <unistd.h>

#include <algorithm>

#include "tests/util/test_client.h"

namespace baton::testing {

SSL_CTX* NewVerifyingClientContext(const std::string& ca_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

TlsTestClient::TlsTestClient(SSL_CTX* ctx, int port, int timeout_ms)
    : fd_(ConnectLoopback(port, timeout_ms)) {
  ssl_ = SSL_new(ctx);
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, "localhost");
  SSL_set1_host(ssl_, "localhost");
}

TlsTestClient::~TlsTestClient() {
  SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

bool TlsTestClient::Handshake() { return fd_ >= 0 && SSL_connect(ssl_) == 1; }

bool TlsTestClient::Send(const std::string& data) {
  size_t written = 0;
  return SSL_write_ex(ssl_, data.data(), data.size(), &written) == 1 &&
         written == data.size();
}

std::string TlsTestClient::Receive(size_t size) {
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

bool TlsTestClient::ReceivedCloseNotify() {
  char byte;
  size_t n = 0;
  const int result = SSL_read_ex(ssl_, &byte, 1, &n);
  return result == 0 && SSL_get_error(ssl_, result) == SSL_ERROR_ZERO_RETURN;
}

void TlsTestClient::Close() {
  SSL_shutdown(ssl_);
  CloseSocket();
}

void TlsTestClient::CloseSocket() {
  ::close(fd_);
  fd_ = -1;
}

}  // namespace baton::testing
