// Public header: connections and the per-connection handler contract.
//
// baton delivers socket events to a ConnectionHandler, one handler object per
// connection, created by the HandlerFactory given to Reactor::Listen (or
// Reactor::Adopt).
//
// The ONESHOT contract
// --------------------
// Every connection's socket is registered with EPOLLONESHOT. When an event
// fires the kernel disarms the socket, so no other thread can receive an event
// for it; on top of that the connection table lets exactly one thread claim a
// connection at a time. Consequently:
//   * at most one thread is inside any of a connection's handler callbacks at
//     any moment, and consecutive callbacks of one connection happen-before
//     each other (no locking is needed for per-connection handler state);
//   * after the callbacks return, the reactor re-arms the socket exactly once
//     (EPOLL_CTL_MOD) with the interest it now needs: EPOLLIN unless reading
//     is paused, EPOLLOUT only while output is queued;
//   * data the handler has not been given yet is never stranded: epoll is
//     level-triggered under ONESHOT, so unread bytes fire again after re-arm.
// Callbacks of different connections run concurrently on different threads.
//
// Long or blocking work in a callback
// -----------------------------------
// A callback may take long (a disk read, a lock, a slow backend, heavy
// computation) or even block. That costs its own connection, never the
// others, as long as another reactor thread is free: the events that thread
// took from epoll_wait together with this one, and the connections waiting
// for a re-read, are in a shared ready queue that every free
// thread drains (docs/leader_follower.md). So size ReactorOptions::threads
// for the number of callbacks you expect to be blocked at once, plus the
// threads that should keep serving everyone else. Per-connection timers
// (below) are ready work like any other: timers of different connections
// that fall due together run on as many threads as are free. Posted tasks
// and reactor timers (Reactor::RunAfter / RunEvery) are the exception: the
// thread that picks up the wake-up runs every task then due, in order.
//
// Input retention (framing)
// -------------------------
// OnData hands over what was read; by default all of it is consumed when
// OnData returns, and nothing is copied. A handler holding an incomplete
// message calls conn.Retain(n) before returning: the last n bytes of `data`
// are kept by the connection and handed back at the start of `data` on the
// next OnData, followed by the new bytes. Only the retained bytes are
// copied; while some are retained, reads append directly behind them, and
// a short tail left behind a read moves to a block of its own size, so a
// waiting connection holds at most twice what it retains (never more than
// max_retained_input plus one read_buffer_size). At most
// ReactorOptions::max_retained_input may be retained: beyond it the
// connection is closed with RESOURCE_EXHAUSTED. Retained bytes still
// waiting when the peer closes are dropped (an incomplete message).
//
// Per-connection timers
// ---------------------
// conn.RunAfter(delay, fn) runs fn(conn) later under the connection's claim,
// like any other callback: never concurrently with the connection's other
// callbacks, on whichever reactor thread serves it (a due timer queues its
// connection for any free thread, as a Reactor::Close from elsewhere
// would). An infinite delay (or one too long for the clock) means never;
// zero or negative means as soon as possible. Timers are cancelled
// when the connection closes and never run after OnClose has begun; they
// may run while the connection is closing (after Close(), until OnClose).
// Each timer is one entry in the reactor's timer queue (O(log n) to add
// or cancel), so one per connection at 100k connections is fine.
//
// Outbound connections
// --------------------
// Reactor::Connect creates the handler before the connection exists. If it
// connects, OnOpen comes first as usual; if it never does, the handler gets
// OnClose with the failure status and no OnOpen (see Reactor::Connect).
//
// STARTTLS: upgrading a plaintext connection in place
// -----------------------------------------------------
// Protocols such as SMTP, IMAP and PostgreSQL open in plaintext and switch
// to TLS on the same connection when both sides agree (SMTP's "STARTTLS" /
// "220 Ready to start TLS", PostgreSQL's SSLRequest / 'S'). A handler does
// the switch with conn.StartTls(options): with TlsServerOptions it takes
// the server's role (answers the peer's ClientHello), with
// TlsClientOptions the client's (sends its ClientHello at once). The
// upgrade point is the call:
//   * everything written before it (Write, SendFile, Reactor::Write that
//     returned before) goes out in plaintext, before any TLS byte;
//   * inside OnData, the bytes of `data` the handler Retain()ed before the
//     call (the bytes after the upgrade request, typically the peer's
//     ClientHello sent in the same segment) go to the TLS engine, not back
//     to OnData; a Retain after the call, in the same OnData, is ignored.
//     Outside OnData (a timer, OnOpen, OnDrained), input retained earlier
//     goes to the engine. Every byte read afterwards goes to the engine:
//     OnData sees only decrypted plaintext from then on;
//   * writes after the call (Reactor::Write too) are plaintext to
//     encrypt: held until the handshake completes (pending_output does
//     not count them meanwhile), then encrypted and sent in order.
// The handshake runs like a TLS listener's (the options' handshake_timeout
// counted from the call); when it completes the handler gets
// OnTlsReady (PauseReading holds the handshake back too). A handshake that
// fails or times out closes the connection with OnClose(reason) naming why
// (as for Reactor::Connect with TLS). ShutdownWrite after StartTls waits
// for the handshake (then sends what was written, close_notify, and shuts
// the socket's sending side); Close before OnTlsReady gives the handshake
// up: the plaintext written before StartTls is still sent, what was
// written since is dropped. Once the handshake has completed, the
// connection is exactly a TLS one: the ONESHOT contract,
// back-pressure (the output high-water mark counts ciphertext),
// close_notify on Close and ShutdownWrite, OnPeerClosed on the peer's
// close_notify. The context built from an options object is kept while
// the object lives: upgrading many connections with one
// shared_ptr<const TlsServerOptions> reads its files once.
//
// Threads
// -------
// `Connection&` is only valid inside a callback, on the calling thread. From
// any other thread, keep the ConnectionId and use Reactor::Write /
// Reactor::Close, which are safe to call from any thread at any time (a stale
// id is detected and ignored).
#ifndef BATON_CONNECTION_H_
#define BATON_CONNECTION_H_

#if __cplusplus < 201703L
#error \
    "baton needs C++17: compile code that includes baton headers with -std=c++17 (Bazel's default is older)"
#endif

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "baton/tls.h"

namespace baton {

class Reactor;
struct TlsClientOptions;  // baton/tls.h
struct TlsServerOptions;

namespace internal {
struct Slot;
class ConnectionLifetime;
class ReactorCore;
}  // namespace internal

// Identifies one connection for its whole life. The low 32 bits name a slot
// in the connection table and the high bits carry that slot's generation, so
// an id outlives neither its connection nor a later connection that reuses the
// same slot or file descriptor: operations on a stale id are no-ops.
struct ConnectionId {
  uint64_t value = 0;

  friend bool operator==(ConnectionId a, ConnectionId b) {
    return a.value == b.value;
  }
  friend bool operator!=(ConnectionId a, ConnectionId b) {
    return a.value != b.value;
  }
  template <typename H>
  friend H AbslHashValue(H h, ConnectionId id) {
    return H::combine(std::move(h), id.value);
  }
};

// The view of a connection given to handler callbacks. Valid only for the
// duration of the callback and only on the thread running it.
// Write: whether the bytes may wait for what the caller writes next.
enum class WriteHint {
  kPush,         // send now
  kMoreFollows,  // a Write or SendFile follows at once in the same callback
                 // (e.g. a response head before its file body): the kernel
                 // may hold these bytes to send them in the same segment
};

// SendFile: who closes the file descriptor.
enum class FileOwnership {
  kCopy,      // the connection sends from its own duplicate; the caller
              // keeps (and closes) file_fd
  kTransfer,  // the connection takes file_fd and closes it once sent or
              // when the connection closes, whatever SendFile returns
};

class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionId id() const { return id_; }
  int fd() const;
  Reactor& reactor() const;

  // Queues `data` for sending, in order after everything written before.
  // Tries to send at once when nothing is queued, so the common case costs a
  // single send(2) and no copy. Never blocks. After Close or once the peer
  // is gone the bytes are dropped. WriteHint::kMoreFollows lets a short
  // head share a segment with the body written right after it.
  void Write(absl::string_view data, WriteHint hint = WriteHint::kPush);

  // Queues `length` bytes of the file `file_fd` starting at `offset`, sent
  // with sendfile(2) (zero copy) in order with Write, paced by EPOLLOUT: the
  // file is never read into memory. With FileOwnership::kCopy the connection
  // keeps its own duplicate and the caller keeps `file_fd`; returns false
  // (and queues nothing) if it cannot be duplicated. With kTransfer the
  // connection owns `file_fd` from this call on (no duplicate; one fcntl
  // and one close fewer per file). On a TLS connection the file is read
  // and encrypted one 16 KiB record at a time, a few records ahead of the
  // socket, still paced by EPOLLOUT: it costs a bounded amount of memory
  // (about 64 KiB of ciphertext plus one block) whatever its length.
  // Either way, a file found shorter than `length` while it is sent closes
  // the connection (OnClose with "send: Input/output error").
  bool SendFile(int file_fd, int64_t offset, int64_t length,
                FileOwnership ownership = FileOwnership::kCopy);

  // On a TLS connection, what its handshake settled (ALPN, version, the
  // peer's verified certificate); null on a plain connection.
  const TlsPeer* tls() const;

  // Bytes accepted by Write / SendFile but not yet handed to the kernel.
  // On a TLS connection: the encrypted bytes queued, plus the plaintext not
  // yet encrypted (a file's bytes not yet read, and what was written behind
  // it or from another thread). The output high-water mark counts the same.
  size_t pending_output() const;

  // Closes the connection once queued output has been sent (or immediately if
  // nothing is queued). If the peer may still be sending, the close lingers:
  // our side is shut down for writing and further input is read and
  // discarded until the peer's EOF or ReactorOptions::linger_timeout, so the
  // peer receives every byte instead of a reset. No OnData follows Close.
  // OnClose follows on this or another reactor thread.
  void Close();

  // Closes at once, discarding queued output (sends RST if data was unread).
  void Abort();

  // Stops / resumes delivering OnData. The reactor also pauses reading by
  // itself while pending_output() exceeds the output high-water mark.
  void PauseReading();
  void ResumeReading();

  // Half-close: once the queued output has been sent, shuts down our
  // sending side (the peer reads EOF) and keeps reading. Writes after it are
  // dropped. When the peer has closed its side too, the connection closes
  // (OnClose with OK).
  void ShutdownWrite();

  // Only inside OnData: keeps the last `n` bytes of the `data` given to
  // this call (clamped to its size) to be handed back, followed by new
  // bytes, on the next OnData. Calling it again replaces the count. See
  // "Input retention" above.
  void Retain(size_t n);

  // Runs `fn(conn)` after `delay`, under this connection's claim (see
  // "Per-connection timers" above). Returns 0, and never runs `fn`, if the
  // connection is closed or closing down (inside OnClose).
  using TimerId = uint64_t;
  TimerId RunAfter(absl::Duration delay, std::function<void(Connection&)> fn);
  // True if the timer was pending and now will not run. Only this
  // connection's RunAfter ids are recognised: a Reactor::RunAfter id, or
  // another connection's timer id, gives false and that timer still runs
  // (and Reactor::CancelTimer likewise ignores the ids returned here).
  bool CancelTimer(TimerId id);

  // Upgrades this plaintext connection to TLS in place (see "STARTTLS"
  // above), as the server (TlsServerOptions) or as the client
  // (TlsClientOptions). Only inside a callback of this connection. Returns
  // OK once the upgrade has begun (OnTlsReady follows when the handshake
  // completes, or OnClose if it fails); otherwise nothing changed and the
  // connection stays plaintext: FailedPrecondition if it already speaks
  // TLS (from its listener, its Connect or an earlier StartTls), is
  // closing, has shut down its sending side, or the peer has closed its
  // side; InvalidArgument for null or bad options (the text names the
  // field, as for a TLS listener).
  absl::Status StartTls(std::shared_ptr<const TlsServerOptions> options);
  absl::Status StartTls(std::shared_ptr<const TlsClientOptions> options);

 private:
  friend class internal::ConnectionLifetime;  // makes the ones handlers see
  Connection(internal::ReactorCore* core, internal::Slot* slot, ConnectionId id)
      : core_(core), slot_(slot), id_(id) {}

  internal::ReactorCore* core_;
  internal::Slot* slot_;
  ConnectionId id_;
};

// Receives one connection's events. All callbacks of one handler run on one
// thread at a time (see the ONESHOT contract above). A callback that blocks
// holds its own connection and one thread, nothing else (see "Long or
// blocking work" above).
//
// Ownership: the reactor owns the handler from creation until after OnClose
// returns, then destroys it.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler();

  // The connection is registered; called before any OnData.
  virtual void OnOpen(Connection& conn) {}

  // Bytes arrived. `data` is valid only during the call; copy what must be
  // kept, or Retain() an incomplete tail (see "Input retention"). Called
  // repeatedly while the peer sends.
  virtual void OnData(Connection& conn, absl::string_view data) = 0;

  // The peer shut down its sending side (read returned 0). The default
  // closes the connection after flushing pending output, which gives an
  // echo-style client every byte back before EOF.
  virtual void OnPeerClosed(Connection& conn);

  // Queued output has been fully written after a backlog built up.
  virtual void OnDrained(Connection& conn) {}

  // The TLS handshake begun by Connection::StartTls completed: from here
  // the peer is authenticated as the options asked, and the writes made
  // since StartTls have been encrypted and queued. Not called for a
  // connection that was TLS from the start (its OnOpen comes after the
  // handshake).
  virtual void OnTlsReady(Connection& conn) {}

  // Last callback. `reason` is OK for a local Close or an orderly peer close,
  // otherwise it says what happened (reset, idle timeout, reactor stopping,
  // retained input limit). For a Reactor::Connect that never connected it
  // is the only callback and says why (refused, timed out, cancelled).
  // Writes are no longer possible.
  virtual void OnClose(Connection& conn, const absl::Status& reason) {}
};

// Creates the handler for a new connection. Called on a reactor thread; may
// be called concurrently from several threads.
using HandlerFactory = std::function<std::unique_ptr<ConnectionHandler>()>;

}  // namespace baton

#endif  // BATON_CONNECTION_H_
