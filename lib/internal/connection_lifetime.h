// Internal header: ConnectionLifetime, a connection's life from open to
// teardown. Every ConnectionPhase transition happens here (see
// connection_state.h), and every connection is closed by Teardown, whatever
// closes it: the handler, the peer, an error, the idle sweep, Drain, Stop.
// Handler callbacks run through Upcall, the one place that makes the
// Connection object a handler sees.
//
// Owns: the draining flag.
// Uses: ReactorOptions, ConnectionTable, TimerQueue, CounterSet; the
//   ReactorCore only to make Connection objects.
// Threads: the caller holds the connection's claim, except SweepIdle (a
//   timer callback), CloseAllAfterJoin (after the join) and the draining
//   flag (any thread).
// Calls: ConnectionIo::Serve (a new connection's first look),
//   ConnectionTimers::CancelConnectionTimers (teardown), EventLoop::AddTimer
//   and ForeignRequests::Request (the linger timeout, the idle sweep).
#ifndef BATON_INTERNAL_CONNECTION_LIFETIME_H_
#define BATON_INTERNAL_CONNECTION_LIFETIME_H_

#include <atomic>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/timer_queue.h"
#include "lib/tls/tls_context.h"

namespace baton::internal {

class ConnectionIo;
class ConnectionTimers;
class EventLoop;
class ForeignRequests;
class ReactorCore;

class ConnectionLifetime {
 public:
  // The sibling pointers may name components not constructed yet: they are
  // used only once connections exist.
  ConnectionLifetime(ReactorCore* core, const ReactorOptions& options,
                     ConnectionTable& table, TimerQueue& timers,
                     CounterSet& counters, EventLoop* loop,
                     ForeignRequests* requests,
                     ConnectionTimers* connection_timers, ConnectionIo* io);
  ConnectionLifetime(const ConnectionLifetime&) = delete;
  ConnectionLifetime& operator=(const ConnectionLifetime&) = delete;

  // Sets up a freshly allocated, claimed slot and serves it.
  // `accepted`: from one of our listeners, so TCP_NODELAY is inherited;
  // `readable`: input is known to be waiting (deferred accept); `tls`: a
  // TLS listener's context: the connection handshakes (kHandshaking) before
  // OnOpen.
  struct OpenMode {
    bool accepted = false;
    bool readable = false;
    const std::shared_ptr<const tls::TlsContext>* tls = nullptr;
  };
  void OpenConnection(Slot* slot, int fd, const HandlerFactory& factory,
                      OpenMode mode);
  // Moves the lifetime on; the transition must be allowed
  // (ConnectionPhaseAllows).
  void SetPhase(Slot* slot, ConnectionPhase to);
  // kClosing with nothing left to send: closes, or lingers if unread input
  // would turn the close into a reset. Returns false if it closed.
  bool CloseOrLinger(Slot* slot);
  // kNew or kConnecting -> kOpen: OnOpen, then kClosing if draining.
  // Returns false if that tore the connection down.
  bool OpenHandler(Slot* slot);
  // The one teardown path: OnClose (unless the handler never opened), a
  // last non-blocking flush if `flush`, close(2), free the slot. Afterwards
  // the slot belongs to the next connection: do not touch it.
  void Teardown(Slot* slot, const absl::Status& reason, bool flush = false);
  // Runs one handler callback, then applies an Abort() made inside it.
  // Returns false if that tore the connection down.
  bool Upcall(Slot* slot,
              absl::FunctionRef<void(ConnectionHandler&, Connection&)> call);
  // The idle sweep (a periodic timer): asks every quiet connection to time
  // out.
  void SweepIdle();
  // Reactor::Wait, after the workers are joined and the AdoptGate closed:
  // tears every connection left down (OnClose, a last flush, close).
  void CloseAllAfterJoin();

  // Reactor::Drain: sets the draining flag; false if it was set.
  bool BeginDrain() {
    return draining_.exchange(1, std::memory_order_acq_rel) == 0;
  }
  bool draining() const {
    return draining_.load(std::memory_order_acquire) != 0;
  }

  // Either timeout is set: reads and sends stamp Slot::last_activity_ms
  // for the idle sweep.
  static bool TracksActivity(const ReactorOptions& options) {
    return options.idle_timeout > absl::ZeroDuration() ||
           options.write_timeout > absl::ZeroDuration();
  }

  // kNew (a TLS listener's connection) or kConnecting (connected with
  // ConnectOptions::tls) -> kHandshaking: a session, the handshake timer;
  // a client's first flight is queued. Returns false if torn down.
  bool StartTls(Slot* slot,
                const std::shared_ptr<const tls::TlsContext>& context);
  // Connection::StartTls (connection_starttls.cc): why this connection
  // cannot be upgraded, or OK; then the upgrade itself, which stays kOpen
  // (TlsState::upgrading until the handshake completes). An error from
  // UpgradeToTls leaves the connection as it was.
  absl::Status CanUpgradeToTls(const Slot* slot) const;
  absl::Status UpgradeToTls(
      Slot* slot, const std::shared_ptr<const tls::TlsContext>& context);
  // A TLS connection's handshake completed: kHandshaking -> kOpen, OnOpen;
  // or, after StartTls, OnTlsReady. Returns false if that tore the
  // connection down.
  bool OpenTls(Slot* slot);
  // A TLS connection's handshake failed or timed out (`reason`): counted,
  // logged, its alert (if any) flushed, torn down without OnClose.
  void FailHandshake(Slot* slot, const absl::Status& reason);
  // kTimerDue on a handshaking TLS connection: if its handshake deadline
  // passed, fails it and returns true (torn down).
  bool HandshakeTimedOut(Slot* slot);

  // baton::Connection (the caller holds the claim on `slot`).
  void OwnerClose(Slot* slot);
  void OwnerAbort(Slot* slot);
  void OwnerShutdownWrite(Slot* slot);

 private:
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  ReactorCore* const core_;
  const ReactorOptions& options_;
  ConnectionTable& table_;
  TimerQueue& timers_;
  CounterSet& counters_;
  EventLoop* const loop_;
  ForeignRequests* const requests_;
  ConnectionTimers* const connection_timers_;
  ConnectionIo* const io_;

  // Drain(): no accepts, close connections. An integer so that openers can
  // read it with an RMW (see OpenHandler).
  std::atomic<uint32_t> draining_{0};
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_LIFETIME_H_
