// Internal header: TlsContext, an OpenSSL SSL_CTX built from the public
// TLS options (baton/tls.h). One context serves every connection of a
// listener (or every connection made with the same ConnectOptions); it is
// immutable once built and may be shared across threads. Each connection
// gets its own TlsSession (tls_session.h) from it.
#ifndef BATON_TLS_TLS_CONTEXT_H_
#define BATON_TLS_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace baton::tls {

class TlsContext {
 public:
  // Errors (InvalidArgument) name the field and the reason: a missing or
  // unreadable file, a file with no PEM certificate or key, a key that
  // does not match the certificate, a CA file with no certificate, an
  // invalid ALPN name, client verification asked for with no CA file.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> ForServer(
      const TlsServerOptions& options);
  static absl::StatusOr<std::shared_ptr<const TlsContext>> ForClient(
      const TlsClientOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return is_server_; }
  // The client's server name (SNI and name check); empty on a server.
  const std::string& server_name() const { return server_name_; }
  bool verify_peer() const { return verify_peer_; }
  absl::Duration handshake_timeout() const { return handshake_timeout_; }
  // TlsServerOptions::plain_http_response; empty on a client.
  const std::string& plain_http_response() const {
    return plain_http_response_;
  }
  SSL_CTX* native_handle() const { return ctx_; }

 private:
  TlsContext(SSL_CTX* ctx, bool is_server);

  SSL_CTX* ctx_;
  bool is_server_;
  bool verify_peer_ = false;
  std::string server_name_;
  // ALPN protocols in wire format (length-prefixed), server side.
  std::string alpn_wire_;
  absl::Duration handshake_timeout_;
  std::string plain_http_response_;
};

// The pending OpenSSL error queue as text ("error:...: reason; ..."), and
// cleared. Empty when the queue is empty.
std::string DrainOpenSslErrors();

}  // namespace baton::tls

#endif  // BATON_TLS_TLS_CONTEXT_H_
