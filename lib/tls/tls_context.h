// Internal header: TlsContext, an OpenSSL SSL_CTX built from the public
// TLS options (baton/tls.h). One context serves every connection of a
// listener (or every connection made with the same ConnectOptions); it is
// immutable once built and may be shared across threads. Each connection
// gets its own TlsSession (tls_session.h) from it.
#ifndef BATON_TLS_TLS_CONTEXT_H_
#define BATON_TLS_TLS_CONTEXT_H_

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

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

  // A client with TlsClientOptions::session_resumption: sets the newest
  // session kept from an earlier connection on `ssl` (before its
  // handshake); a TLS 1.3 ticket is then forgotten (it is for one use), a
  // TLS 1.2 session kept for the next. Nothing when none is kept or
  // resumption is off.
  void OfferSession(SSL* ssl) const;

 private:
  TlsContext(SSL_CTX* ctx, bool is_server);
  // OpenSSL's new-session callback: keeps `session` (returns 1: the
  // reference is ours) for OfferSession, at most kKeptSessions of them.
  static int KeepSession(SSL* ssl, SSL_SESSION* session);
  static constexpr size_t kKeptSessions = 4;

  SSL_CTX* ctx_;
  bool is_server_;
  bool verify_peer_ = false;
  std::string server_name_;
  // ALPN protocols in wire format (length-prefixed), server side.
  std::string alpn_wire_;
  absl::Duration handshake_timeout_;
  std::string plain_http_response_;
  // Client sessions for resumption, oldest first; each holds a reference.
  mutable std::mutex sessions_mu_;
  mutable std::deque<SSL_SESSION*> sessions_;  // guarded by sessions_mu_
};

// The pending OpenSSL error queue as text ("error:...: reason; ..."), and
// cleared. Empty when the queue is empty.
std::string DrainOpenSslErrors();

}  // namespace baton::tls

#endif  // BATON_TLS_TLS_CONTEXT_H_
