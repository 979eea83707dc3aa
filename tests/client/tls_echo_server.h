// Test utility: a TLS echo server on the TLS engine (lib/tls), one poll
// thread on 127.0.0.1 port 0, for the client's TLS modes.
#ifndef BATON_TESTS_CLIENT_TLS_ECHO_SERVER_H_
#define BATON_TESTS_CLIENT_TLS_ECHO_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"

namespace baton::testing {

class TlsEchoServer {
 public:
  // Listens at once; serves until destroyed.
  explicit TlsEchoServer(std::shared_ptr<const tls::TlsContext> context);
  // One serving the certificate chain and key in these PEM files.
  static absl::StatusOr<std::unique_ptr<TlsEchoServer>> Start(
      const std::string& certificate_file, const std::string& key_file);
  ~TlsEchoServer();
  TlsEchoServer(const TlsEchoServer&) = delete;
  TlsEchoServer& operator=(const TlsEchoServer&) = delete;

  const client::Endpoint& endpoint() const { return endpoint_; }
  int port() const { return port_; }
  // Handshakes completed, and sessions that failed (handshake or protocol).
  int64_t handshakes() const { return handshakes_.load(); }
  int64_t failures() const { return failures_.load(); }

 private:
  void Run();

  std::shared_ptr<const tls::TlsContext> context_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  client::Endpoint endpoint_;
  int port_ = 0;
  std::atomic<int64_t> handshakes_{0};
  std::atomic<int64_t> failures_{0};
  std::thread thread_;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_CLIENT_TLS_ECHO_SERVER_H_
