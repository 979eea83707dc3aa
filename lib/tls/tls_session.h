// Internal header: TlsSession, the TLS engine of one connection. It does no
// socket I/O and never blocks: the reactor hands it the ciphertext it read
// from the socket and takes back plaintext for OnData; it hands it the
// plaintext a handler wrote and takes back ciphertext to queue. OpenSSL runs
// over two memory BIOs (ciphertext in, ciphertext out), so every call
// returns at once and reports what it needs through state() and the
// input/output accessors.
//
// How the reactor drives it (lib/internal/connection_io.cc):
//
// Read path (ReadInput / Deliver), on EPOLLIN or a re-read:
//   1. read(2) ciphertext into the read buffer and Feed() it (one copy into
//      OpenSSL); on read() == 0, FeedEof().
//   2. Loop Read(buffer, capacity) and pass each plaintext piece to OnData
//      (the handler still sees plaintext only; Retain works on it as today)
//      until Read returns 0. While the handshake runs, Read drives it and
//      returns 0; when state() turns kOpen the reactor calls OnOpen (it is
//      not called at accept/connect time for a TLS connection).
//   3. If the loop stopped early (the per-event read budget, PauseReading,
//      the input retention limit), HasBufferedInput() tells whether the
//      engine still holds input (plaintext OpenSSL decrypted but did not
//      hand over, SSL_pending; or ciphertext not decrypted yet, such as a
//      record split across reads). The socket will not signal for it, so
//      the connection must be served again (a re-read round, not a re-arm
//      waiting on epoll) until it is drained or reading is paused.
//   4. Flush output: the handshake, a key update, a session ticket or an
//      alert produce ciphertext during Read. Move TakeOutput() into the
//      output queue and flush it before re-arming (a read that needs a write
//      completes here).
//   5. state() kClosed (peer's close_notify): report it like today's peer
//      EOF (OnPeerClosed). kTruncated (EOF with no close_notify) and kFailed
//      (handshake, verification or protocol error): flush the output (it may
//      hold our alert), then tear down with status() as OnClose's reason.
//
// Write path (OwnerWrite / Connection::Write): Write(plaintext) encrypts at
// once into the output BIO (before the handshake completes it is held and
// encrypted when it does); then TakeOutput() into the OutputQueue. The
// queue's bytes, and so the high-water mark, count encrypted bytes. A write
// never needs a read: the output BIO always takes the record, so a write
// that OpenSSL would report as "wants read" cannot happen.
// Reactor::Write from another thread or connection cannot touch the
// session: it queues plaintext that the owner passes to Write ahead of its
// own writes and before each flush (EncryptQueuedPlaintext).
// SendFile: sendfile(2) cannot encrypt, so the reactor reads the file in
// blocks (16 KiB, one record each) as the queue drains and passes each to
// Write.
//
// Close: Close() queues close_notify; flush it, then shut the socket as
// today. ShutdownWrite() on a TLS connection is the same close_notify (the
// peer may keep sending; TLS 1.3 allows it, and Read keeps working).
//
// Handshake timeout: TlsContext::handshake_timeout(); the reactor arms a
// connection timer at accept/connect and closes with DeadlineExceeded if
// state() is still kHandshaking.
//
// STARTTLS (Connection::StartTls, lib/internal/connection_starttls.cc):
// create a session on an open plaintext connection and Feed() the bytes
// already read past the upgrade point before reading the socket again; the
// handshake timer starts then.
//
// Not thread-safe: one session belongs to one connection and is used under
// its claim, like the connection's other state.
#ifndef BATON_TLS_TLS_SESSION_H_
#define BATON_TLS_TLS_SESSION_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/tls/tls_context.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace baton::tls {

class TlsSession {
 public:
  enum class State {
    kHandshaking,  // Read drives the handshake; Write is held until kOpen
    kOpen,         // handshake done: data flows both ways
    kClosed,       // the peer sent close_notify; no more input
    kTruncated,    // the input ended without close_notify (DataLoss)
    kFailed,       // handshake, verification or protocol error
  };

  // A server or client session as the context is. The client sends the
  // context's server name as SNI and checks it against the certificate.
  static absl::StatusOr<std::unique_ptr<TlsSession>> Create(
      std::shared_ptr<const TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext read from the socket (copied once, into OpenSSL's input).
  void Feed(absl::string_view ciphertext);
  // The socket's input ended. Read then reports kClosed if close_notify
  // came before the end, kTruncated otherwise (kFailed mid-handshake).
  void FeedEof();

  // Advances the handshake and decrypts into `buffer`, as many whole
  // records as fit: the plaintext bytes written, 0 when no more can be
  // produced from the input given so far (check state() then; it may also
  // have changed after a non-zero return: the peer's close_notify or a
  // failure that followed the plaintext). A client starts its handshake with
  // the first call (Read(nullptr, 0) is fine for that).
  size_t Read(char* buffer, size_t capacity);
  // True while input is buffered inside the engine: decrypted plaintext not
  // handed over yet, or ciphertext not decrypted yet. The socket will not
  // signal for it: call Read again before waiting on the socket.
  bool HasBufferedInput() const;

  // Encrypts `plaintext` into the output (held until the handshake
  // completes). FailedPrecondition after Close or once closed or failed.
  absl::Status Write(absl::string_view plaintext);
  // Queues close_notify (once); later Writes fail.
  void Close();

  // Ciphertext waiting to be sent, and taking it: appended to `out`, or
  // written to `out` (at most `capacity` bytes; returns how many).
  size_t PendingOutput() const;
  size_t TakeOutput(std::string* out);
  size_t TakeOutput(char* out, size_t capacity);

  State state() const { return state_; }
  // OK while kHandshaking, kOpen or kClosed. kTruncated: DataLoss.
  // kFailed: Unauthenticated for a certificate the peer or we rejected
  // (the text says why: "certificate verify failed: ...", "hostname
  // mismatch", "peer alert: unknown CA"), Unavailable for other handshake
  // and protocol errors (with OpenSSL's reason and the peer's alert).
  const absl::Status& status() const { return status_; }
  // The input was a plaintext HTTP request, not a TLS record: a server may
  // answer it in plaintext ("400: plain HTTP request sent to HTTPS port")
  // before closing.
  bool plain_http_request() const { return plain_http_; }
  // The alert the peer sent, in words ("unknown CA"); empty if none.
  const std::string& peer_alert() const { return peer_alert_; }

  // After the handshake: the protocol both sides agreed on by ALPN (empty
  // if none), the negotiated version ("TLSv1.3"), and the peer's verified
  // name: for a client the name that matched the server's certificate, for
  // a server the subject of a verified client certificate; empty if none.
  std::string alpn() const;
  std::string version() const;
  std::string peer_name() const;
  // Whether the peer presented a certificate that verified (see TlsPeer),
  // and all of the above as the handler sees it (Connection::tls).
  bool peer_verified() const;
  TlsPeer Peer() const;
  // On a server, the name the client asked for by SNI; empty if none.
  std::string requested_server_name() const;

  bool is_server() const { return context_->is_server(); }
  const TlsContext& context() const { return *context_; }
  // The OpenSSL handle, for tests and diagnostics.
  SSL* native_handle() const { return ssl_; }

 private:
  explicit TlsSession(std::shared_ptr<const TlsContext> context);
  // Records the failure of the last SSL call that returned `result`.
  void Fail(int result);
  void SetFailed(absl::StatusCode code, std::string text);
  // Writes the plaintext held during the handshake.
  void WriteHeld();
  static void InfoCallback(const SSL* ssl, int where, int value);

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  BIO* input_ = nullptr;   // ciphertext from the peer (owned by ssl_)
  BIO* output_ = nullptr;  // ciphertext to the peer (owned by ssl_)
  State state_ = State::kHandshaking;
  absl::Status status_;
  std::string held_;  // plaintext written during the handshake
  bool closing_ = false;
  bool plain_http_ = false;
  std::string peer_alert_;
  int peer_alert_code_ = 0;
  std::string sent_alert_;
};

}  // namespace baton::tls

#endif  // BATON_TLS_TLS_SESSION_H_
