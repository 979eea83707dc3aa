// TlsContext: SSL_CTX construction and option checks.
#include "lib/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton::tls {
namespace {

absl::Status FileError(absl::string_view field, const std::string& path,
                       absl::string_view what) {
  std::string errors = DrainOpenSslErrors();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " ", path, ": ", what, errors.empty() ? "" : " (",
                   errors, errors.empty() ? "" : ")"));
}

// The file exists and is readable; the error names the field otherwise.
absl::Status CheckReadable(absl::string_view field, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status LoadCertificateAndKey(SSL_CTX* ctx, const std::string& chain_file,
                                   const std::string& key_file) {
  absl::Status status = CheckReadable("certificate_chain_file", chain_file);
  if (!status.ok()) return status;
  status = CheckReadable("private_key_file", key_file);
  if (!status.ok()) return status;
  if (SSL_CTX_use_certificate_chain_file(ctx, chain_file.c_str()) != 1) {
    return FileError("certificate_chain_file", chain_file,
                     "no valid PEM certificate");
  }
  BIO* bio = BIO_new_file(key_file.c_str(), "r");
  EVP_PKEY* key = bio == nullptr
                      ? nullptr
                      : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    return FileError("private_key_file", key_file,
                     "no valid unencrypted PEM private key");
  }
  const bool matches =
      X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) == 1;
  const bool used = matches && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    DrainOpenSslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("private_key_file ", key_file,
                     " does not match the certificate in ", chain_file));
  }
  if (!used) return FileError("private_key_file", key_file, "not usable");
  return absl::OkStatus();
}

absl::StatusOr<std::string> AlpnWire(const std::vector<std::string>& names) {
  std::string wire;
  for (const std::string& name : names) {
    if (name.empty() || name.size() > 255) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alpn: protocol name \"", name, "\" must be 1..255 bytes"));
    }
    wire.push_back(static_cast<char>(name.size()));
    wire += name;
  }
  return wire;
}

absl::Status CommonSetup(SSL_CTX* ctx, TlsVersion min_version,
                         absl::Duration handshake_timeout) {
  if (handshake_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("handshake_timeout must be positive");
  }
  const int version =
      min_version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(ctx, version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Idle connections give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return absl::OkStatus();
}

// Server side of ALPN: the first of the server's protocols the client
// offers; none in common fails the handshake, as RFC 7301 asks.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length,
               void* arg) {
  const std::string& ours = *static_cast<const std::string*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length,
                            reinterpret_cast<const unsigned char*>(ours.data()),
                            static_cast<unsigned int>(ours.size()), offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text;
}

TlsContext::TlsContext(SSL_CTX* ctx, bool is_server)
    : ctx_(ctx), is_server_(is_server) {}

TlsContext::~TlsContext() {
  for (SSL_SESSION* session : sessions_) SSL_SESSION_free(session);
  SSL_CTX_free(ctx_);
}

int TlsContext::KeepSession(SSL* ssl, SSL_SESSION* session) {
  auto* context = static_cast<const TlsContext*>(
      SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (context == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  SSL_SESSION* dropped = nullptr;
  {
    std::lock_guard<std::mutex> lock(context->sessions_mu_);
    context->sessions_.push_back(session);
    if (context->sessions_.size() > kKeptSessions) {
      dropped = context->sessions_.front();
      context->sessions_.pop_front();
    }
  }
  if (dropped != nullptr) SSL_SESSION_free(dropped);
  return 1;
}

void TlsContext::OfferSession(SSL* ssl) const {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (sessions_.empty()) return;
  SSL_SESSION* session = sessions_.back();
  SSL_set_session(ssl, session);  // takes its own reference
  // A TLS 1.3 ticket is for one connection; a TLS 1.2 session may be
  // resumed again (a resumed handshake brings no new one), so it stays.
  if (SSL_SESSION_get_protocol_version(session) >= TLS1_3_VERSION) {
    sessions_.pop_back();
    SSL_SESSION_free(session);
  }
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::ForServer(
    const TlsServerOptions& options) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_new: ", DrainOpenSslErrors()));
  }
  std::shared_ptr<TlsContext> context(new TlsContext(raw, true));
  context->handshake_timeout_ = options.handshake_timeout;
  context->plain_http_response_ = options.plain_http_response;
  absl::Status status =
      CommonSetup(raw, options.min_version, options.handshake_timeout);
  if (!status.ok()) return status;
  SSL_CTX_set_options(raw, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!options.session_resumption) {
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(raw, 0);
  }
  status = LoadCertificateAndKey(raw, options.certificate_chain_file,
                                 options.private_key_file);
  if (!status.ok()) return status;
  if (options.client_certificates != TlsClientCertificates::kNone) {
    const std::string& ca = options.client_ca_file;
    status = CheckReadable("client_ca_file", ca);
    if (!status.ok()) return status;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(raw, ca.c_str(), nullptr) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return FileError("client_ca_file", ca, "no valid PEM CA certificate");
    }
    SSL_CTX_set_client_CA_list(raw, names);
    int mode = SSL_VERIFY_PEER;
    if (options.client_certificates == TlsClientCertificates::kRequire) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(raw, mode, nullptr);
    context->verify_peer_ = true;
  }
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  context->alpn_wire_ = *std::move(alpn);
  if (!context->alpn_wire_.empty()) {
    SSL_CTX_set_alpn_select_cb(raw, SelectAlpn, &context->alpn_wire_);
  }
  return std::shared_ptr<const TlsContext>(std::move(context));
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::ForClient(
    const TlsClientOptions& options) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_new: ", DrainOpenSslErrors()));
  }
  std::shared_ptr<TlsContext> context(new TlsContext(raw, false));
  context->handshake_timeout_ = options.handshake_timeout;
  context->server_name_ = options.server_name;
  context->verify_peer_ = options.verify_peer;
  absl::Status status =
      CommonSetup(raw, options.min_version, options.handshake_timeout);
  if (!status.ok()) return status;
  if (options.verify_peer) {
    if (options.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(raw) != 1) {
        return absl::InternalError(absl::StrCat(
            "the system CA store could not be loaded: ", DrainOpenSslErrors()));
      }
    } else {
      status = CheckReadable("ca_file", options.ca_file);
      if (!status.ok()) return status;
      if (SSL_CTX_load_verify_locations(raw, options.ca_file.c_str(),
                                        nullptr) != 1) {
        return FileError("ca_file", options.ca_file,
                         "no valid PEM CA certificate");
      }
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  if (!options.certificate_chain_file.empty() ||
      !options.private_key_file.empty()) {
    status = LoadCertificateAndKey(raw, options.certificate_chain_file,
                                   options.private_key_file);
    if (!status.ok()) return status;
  }
  if (options.session_resumption && !options.server_name.empty()) {
    // Sessions go to KeepSession, not to OpenSSL's own client cache.
    SSL_CTX_set_app_data(raw, context.get());
    SSL_CTX_set_session_cache_mode(
        raw, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(raw, &TlsContext::KeepSession);
  } else {
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  }
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  if (!alpn->empty() &&
      SSL_CTX_set_alpn_protos(
          raw, reinterpret_cast<const unsigned char*>(alpn->data()),
          static_cast<unsigned int>(alpn->size())) != 0) {
    return absl::InternalError("alpn: SSL_CTX_set_alpn_protos failed");
  }
  return std::shared_ptr<const TlsContext>(std::move(context));
}

}  // namespace baton::tls
