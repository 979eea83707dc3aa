// TlsSession: OpenSSL over memory BIOs, driven by the reactor.
#include "lib/tls/tls_session.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace baton::tls {
namespace {

bool IsIpLiteral(const std::string& name) {
  unsigned char address[16];
  return inet_pton(AF_INET, name.c_str(), address) == 1 ||
         inet_pton(AF_INET6, name.c_str(), address) == 1;
}

// Alerts by which a peer rejects a certificate (ours or the lack of one).
bool IsCertificateAlert(int description) {
  switch (description) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

// An alert's description in words. OpenSSL 3.0 has no words for the
// TLS 1.3 alert certificate_required.
std::string AlertText(int description) {
  if (description == SSL_AD_CERTIFICATE_REQUIRED) return "certificate required";
  const std::string text = SSL_alert_desc_string_long(description);
  return text != "unknown" ? text : absl::StrCat("alert ", description);
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context)
    : context_(std::move(context)) {}

TlsSession::~TlsSession() { SSL_free(ssl_); }

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(
    std::shared_ptr<const TlsContext> context) {
  ERR_clear_error();
  std::unique_ptr<TlsSession> session(new TlsSession(std::move(context)));
  TlsSession& s = *session;
  s.ssl_ = SSL_new(s.context_->native_handle());
  s.input_ = BIO_new(BIO_s_mem());
  s.output_ = BIO_new(BIO_s_mem());
  if (s.ssl_ == nullptr || s.input_ == nullptr || s.output_ == nullptr) {
    BIO_free(s.input_);
    BIO_free(s.output_);
    return absl::ResourceExhaustedError(
        absl::StrCat("TLS session: ", DrainOpenSslErrors()));
  }
  // An empty input means "wait for more", not end of stream.
  BIO_set_mem_eof_return(s.input_, -1);
  SSL_set_bio(s.ssl_, s.input_, s.output_);
  SSL_set_app_data(s.ssl_, &s);
  SSL_set_info_callback(s.ssl_, &TlsSession::InfoCallback);
  if (s.context_->is_server()) {
    SSL_set_accept_state(s.ssl_);
    return session;
  }
  SSL_set_connect_state(s.ssl_);
  const std::string& name = s.context_->server_name();
  if (name.empty()) return session;
  s.context_->OfferSession(s.ssl_);
  bool named = false;
  if (IsIpLiteral(name)) {
    named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s.ssl_),
                                          name.c_str()) == 1;
  } else {
    SSL_set_hostflags(s.ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    named = SSL_set_tlsext_host_name(s.ssl_, name.c_str()) == 1 &&
            SSL_set1_host(s.ssl_, name.c_str()) == 1;
  }
  if (!named) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server_name \"", name, "\" rejected: ", DrainOpenSslErrors()));
  }
  return session;
}

void TlsSession::InfoCallback(const SSL* ssl, int where, int value) {
  if ((where & SSL_CB_ALERT) == 0 || (value & 0xff) == SSL_AD_CLOSE_NOTIFY) {
    return;
  }
  auto* session = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  const std::string alert = AlertText(value & 0xff);
  if (where & SSL_CB_READ) {
    session->peer_alert_ = alert;
    session->peer_alert_code_ = value & 0xff;
  } else {
    session->sent_alert_ = alert;
  }
}

void TlsSession::Feed(absl::string_view ciphertext) {
  // BIO_write takes an int length.
  constexpr size_t kMaxPiece = size_t{1} << 30;
  while (!ciphertext.empty()) {
    const size_t piece = std::min(ciphertext.size(), kMaxPiece);
    BIO_write(input_, ciphertext.data(), static_cast<int>(piece));
    ciphertext.remove_prefix(piece);
  }
}

void TlsSession::FeedEof() { BIO_set_mem_eof_return(input_, 0); }

size_t TlsSession::Read(char* buffer, size_t capacity) {
  if (state_ == State::kHandshaking) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_);
    if (result != 1) {
      if (SSL_get_error(ssl_, result) != SSL_ERROR_WANT_READ) Fail(result);
      return 0;
    }
    state_ = State::kOpen;
    const bool close_requested = closing_;
    closing_ = false;
    WriteHeld();
    if (close_requested) Close();
  }
  if (state_ != State::kOpen || capacity == 0) return 0;
  // SSL_read gives one record (at most 16 KiB) per call: read records
  // until the buffer is full or no whole record is left, so a bulk stream
  // reaches the handler in buffer-sized pieces, not record-sized ones.
  // Plaintext read before the end of the stream or a failure is returned;
  // state() tells the caller what came after it.
  size_t total = 0;
  while (total < capacity) {
    ERR_clear_error();
    size_t n = 0;
    const int result = SSL_read_ex(ssl_, buffer + total, capacity - total, &n);
    if (result == 1) {
      total += n;
      continue;
    }
    switch (SSL_get_error(ssl_, result)) {
      case SSL_ERROR_WANT_READ:
        break;
      case SSL_ERROR_ZERO_RETURN:
        state_ = State::kClosed;
        break;
      default:
        Fail(result);
    }
    break;
  }
  return total;
}

bool TlsSession::HasBufferedInput() const {
  if (state_ != State::kHandshaking && state_ != State::kOpen) return false;
  // After a Read that returned 0 for want of input, OpenSSL has taken all
  // the fed ciphertext (a partial record waits inside it, and only more
  // input completes it), so input left in the BIO means fed since.
  return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(input_) > 0;
}

absl::Status TlsSession::Write(absl::string_view plaintext) {
  if (closing_ || state_ == State::kTruncated || state_ == State::kFailed) {
    return absl::FailedPreconditionError("TLS write after close or failure");
  }
  if (plaintext.empty()) return absl::OkStatus();
  if (state_ == State::kHandshaking) {
    held_.append(plaintext.data(), plaintext.size());
    return absl::OkStatus();
  }
  ERR_clear_error();
  size_t written = 0;
  const int result =
      SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &written);
  if (result != 1) {
    Fail(result);
    return status_;
  }
  return absl::OkStatus();
}

void TlsSession::WriteHeld() {
  std::string held;
  held.swap(held_);
  if (!held.empty()) Write(held).IgnoreError();
}

void TlsSession::Close() {
  if (closing_) return;
  closing_ = true;
  // During the handshake there is no session to close yet: Read sends
  // close_notify once the handshake completes (after the held writes).
  if (state_ != State::kOpen && state_ != State::kClosed) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

size_t TlsSession::PendingOutput() const { return BIO_ctrl_pending(output_); }

size_t TlsSession::TakeOutput(char* out, size_t capacity) {
  const size_t n = std::min(capacity, PendingOutput());
  if (n == 0) return 0;
  const int got = BIO_read(output_, out, static_cast<int>(n));
  return got > 0 ? static_cast<size_t>(got) : 0;
}

size_t TlsSession::TakeOutput(std::string* out) {
  const size_t n = BIO_ctrl_pending(output_);
  if (n == 0) return 0;
  const size_t old_size = out->size();
  out->resize(old_size + n);
  const int got = BIO_read(output_, &(*out)[old_size], static_cast<int>(n));
  out->resize(old_size + (got > 0 ? got : 0));
  return got > 0 ? got : 0;
}

void TlsSession::Fail(int result) {
  const int error = SSL_get_error(ssl_, result);
  const unsigned long code = ERR_peek_error();
  const int reason = ERR_GET_REASON(code);
  const bool handshaking = state_ == State::kHandshaking;
  const bool ssl_reason = code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL;
  ERR_clear_error();
  if ((ssl_reason && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
      (error == SSL_ERROR_SYSCALL && code == 0)) {
    if (!handshaking) {
      state_ = State::kTruncated;
      status_ = absl::DataLossError(
          "TLS: the peer closed the connection without close_notify "
          "(truncated)");
      return;
    }
    SetFailed(absl::StatusCode::kUnavailable,
              "TLS handshake failed: connection closed by the peer");
    return;
  }
  std::string text = handshaking ? "TLS handshake failed: " : "TLS error: ";
  const char* reason_text = code != 0 ? ERR_reason_error_string(code) : nullptr;
  absl::StrAppend(&text, reason_text != nullptr
                             ? reason_text
                             : absl::StrCat("SSL error ", error));
  absl::StatusCode status_code = absl::StatusCode::kUnavailable;
  if (ssl_reason &&
      (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)) {
    plain_http_ = true;
    text += " (plain HTTP request sent to a TLS port)";
  }
  if (ssl_reason && (reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
                     reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)) {
    status_code = absl::StatusCode::kUnauthenticated;
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      absl::StrAppend(&text, ": ", X509_verify_cert_error_string(verify));
    }
  }
  if (!peer_alert_.empty()) {
    absl::StrAppend(&text, "; peer alert: ", peer_alert_);
    if (IsCertificateAlert(peer_alert_code_)) {
      status_code = absl::StatusCode::kUnauthenticated;
    }
  }
  if (!sent_alert_.empty())
    absl::StrAppend(&text, "; sent alert: ", sent_alert_);
  SetFailed(status_code, std::move(text));
}

void TlsSession::SetFailed(absl::StatusCode code, std::string text) {
  state_ = State::kFailed;
  status_ = absl::Status(code, text);
}

std::string TlsSession::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

std::string TlsSession::version() const { return SSL_get_version(ssl_); }

std::string TlsSession::requested_server_name() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

bool TlsSession::peer_verified() const {
  return context_->verify_peer() &&
         SSL_get0_peer_certificate(ssl_) != nullptr &&
         SSL_get_verify_result(ssl_) == X509_V_OK;
}

TlsPeer TlsSession::Peer() const {
  return TlsPeer(alpn(),
                 SSL_version(ssl_) == TLS1_3_VERSION ? TlsVersion::kTls13
                                                     : TlsVersion::kTls12,
                 peer_name(), peer_verified(), SSL_session_reused(ssl_) == 1);
}

std::string TlsSession::peer_name() const {
  if (!context_->verify_peer() || SSL_get_verify_result(ssl_) != X509_V_OK) {
    return "";
  }
  if (!is_server()) {
    const char* name = SSL_get0_peername(ssl_);
    // An IP literal matched no host name: the literal is the name.
    return name != nullptr ? name : context_->server_name();
  }
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  if (certificate == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0,
                     XN_FLAG_RFC2253);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string subject(data, length > 0 ? length : 0);
  BIO_free(bio);
  return subject;
}

}  // namespace baton::tls
