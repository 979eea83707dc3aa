// Client library: the load generators' TLS context and blocking TLS I/O.
#include "client/tls_client.h"

#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"
#include "client/net.h"

namespace baton::client {
namespace {

using State = tls::TlsSession::State;

// Moves ciphertext both ways until `done()` holds with nothing left to
// send, appending the plaintext that arrives to `plain`. Errors: the
// deadline, a socket error, or the session failing or ending.
absl::Status Pump(int fd, tls::TlsSession& session, std::string* plain,
                  const std::function<bool()>& done, int64_t deadline_ns,
                  const std::string& timeout_message) {
  std::string out;
  size_t out_sent = 0;
  char buffer[16384];
  for (;;) {
    session.TakeOutput(&out);
    while (out_sent < out.size()) {
      const ssize_t n = ::send(fd, out.data() + out_sent, out.size() - out_sent,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        return absl::UnavailableError(
            absl::StrCat("send failed: ", std::strerror(errno)));
      }
      out_sent += static_cast<size_t>(n);
    }
    if (out_sent == out.size()) {
      out.clear();
      out_sent = 0;
    }
    if (out.empty() && done()) return absl::OkStatus();
    const State state = session.state();
    if (state != State::kHandshaking && state != State::kOpen) {
      return state == State::kClosed
                 ? absl::UnavailableError("server closed the TLS session")
                 : session.status();
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      session.Feed(absl::string_view(buffer, static_cast<size_t>(n)));
    } else if (n == 0) {
      session.FeedEof();
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("receive failed: ", std::strerror(errno)));
    } else {
      const int64_t left_ns = deadline_ns - NowNanos();
      if (left_ns <= 0) return absl::DeadlineExceededError(timeout_message);
      pollfd p = {fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)),
                  0};
      ::poll(&p, 1, static_cast<int>((left_ns + 999999) / 1000000));
      continue;
    }
    for (;;) {
      const size_t got = session.Read(buffer, sizeof(buffer));
      if (got == 0) break;
      plain->append(buffer, got);
    }
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const tls::TlsContext>> FullHandshakeContext(
    const TlsClientOptions& options) {
  TlsClientOptions full = options;
  full.session_resumption = false;
  absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
      tls::TlsContext::ForClient(full);
  if (!context.ok()) return context;
  // Not shared yet, so changing it is safe.
  SSL_CTX* ctx = (*context)->native_handle();
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return context;
}

absl::Status HandshakeBlocking(int fd, tls::TlsSession& session,
                               int64_t deadline_ns) {
  std::string plain;
  session.Read(nullptr, 0);  // the ClientHello
  const absl::Status status = Pump(
      fd, session, &plain, [&] { return session.state() == State::kOpen; },
      deadline_ns, "timed out during the TLS handshake");
  if (!status.ok()) return status;
  if (!plain.empty()) {
    return absl::UnavailableError("the server sent data before any request");
  }
  return absl::OkStatus();
}

std::string TlsEchoRoundTrip(int fd, tls::TlsSession& session,
                             const std::string& message, int timeout_ms,
                             std::string* reply) {
  const int64_t deadline = NowNanos() + int64_t{timeout_ms} * 1000000;
  reply->clear();
  const absl::Status written = session.Write(message);
  if (!written.ok()) return std::string(written.message());
  const absl::Status status = Pump(
      fd, session, reply, [&] { return reply->size() >= message.size(); },
      deadline,
      absl::StrCat("timed out after ", timeout_ms,
                   " ms waiting for the reply"));
  if (!status.ok()) {
    return absl::StrCat(status.message(), " (after ", reply->size(), " of ",
                        message.size(), " reply bytes)");
  }
  if (*reply == message) return "";
  if (reply->size() > message.size()) {
    return absl::StrCat("server sent ", reply->size(), " bytes, ",
                        reply->size() - message.size(), " more than asked");
  }
  size_t at = 0;
  while ((*reply)[at] == message[at]) ++at;
  return absl::StrCat("reply byte ", at, " of ", message.size(),
                      " differs from what was sent");
}

void CloseTls(int fd, tls::TlsSession& session) {
  if (session.state() != State::kOpen) return;
  session.Close();
  std::string alert;
  session.TakeOutput(&alert);
  (void)::send(fd, alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace baton::client
