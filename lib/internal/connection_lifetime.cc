// Internal: a connection's life from open to teardown. Every
// ConnectionPhase transition happens here (see connection_state.h), and
// every connection is closed by Teardown, whatever closes it: the handler,
// the peer, an error, the idle sweep, Drain, or Stop.
#include "lib/internal/connection_lifetime.h"

#include <glog/logging.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "lib/internal/connection_io.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/connection_tls.h"
#include "lib/internal/event_loop.h"
#include "lib/internal/foreign_requests.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/socket_util.h"
#include "lib/net/clock.h"
#include "lib/net/socket_options.h"

namespace baton::internal {

const char* ConnectionPhaseName(ConnectionPhase phase) {
  switch (phase) {
    case ConnectionPhase::kNew:
      return "new";
    case ConnectionPhase::kConnecting:
      return "connecting";
    case ConnectionPhase::kHandshaking:
      return "handshaking";
    case ConnectionPhase::kOpen:
      return "open";
    case ConnectionPhase::kClosing:
      return "closing";
    case ConnectionPhase::kLingering:
      return "lingering";
    case ConnectionPhase::kAborting:
      return "aborting";
    case ConnectionPhase::kClosed:
      return "closed";
  }
  return "?";
}

ConnectionLifetime::ConnectionLifetime(
    ReactorCore* core, const ReactorOptions& options, ConnectionTable& table,
    TimerQueue& timers, CounterSet& counters, EventLoop* loop,
    ForeignRequests* requests, ConnectionTimers* connection_timers,
    ConnectionIo* io)
    : core_(core),
      options_(options),
      table_(table),
      timers_(timers),
      counters_(counters),
      loop_(loop),
      requests_(requests),
      connection_timers_(connection_timers),
      io_(io) {}

void ConnectionLifetime::SetPhase(Slot* slot, ConnectionPhase to) {
  AssertClaimed(slot);
  DCHECK(ConnectionPhaseAllows(slot->owner.phase, to))
      << "connection phase " << ConnectionPhaseName(slot->owner.phase) << " -> "
      << ConnectionPhaseName(to);
  if (slot->owner.phase == ConnectionPhase::kOpen) {
    // Leaving kOpen: no more output, from this thread (OwnerWrite checks
    // the phase) or any other (Write checks this flag under out_mu).
    slot->state.fetch_or(kOutputClosed, std::memory_order_release);
  }
  slot->owner.phase = to;
  if (to == ConnectionPhase::kClosing) {
    if (TlsState* tls = TlsOf(slot->owner)) {
      // Foreign Writes accepted before kOutputClosed (and a file being
      // sent) go before close_notify, which goes before the close.
      CloseTlsAfterOutput(slot, *tls);
    }
  }
}

void ConnectionLifetime::OpenConnection(Slot* slot, int fd,
                                        const HandlerFactory& factory,
                                        OpenMode mode) {
  AssertClaimed(slot);
  slot->owner = OwnerState{};
  slot->owner.fd = fd;
  slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                               std::memory_order_relaxed);
  if (!mode.accepted) net::SetNoDelay(fd);
  std::unique_ptr<ConnectionHandler> handler = factory();
  if (handler == nullptr) {
    LOG_EVERY_N(ERROR, 1000) << "handler factory returned null; closing";
    Teardown(slot, absl::InternalError("no handler"));
    return;
  }
  slot->owner.handler = handler.release();
  if (mode.tls != nullptr) {
    if (!StartTls(slot, *mode.tls)) return;
  } else if (!OpenHandler(slot)) {
    return;
  }
  // Not yet registered: Serve's first Rearm adds it to epoll, unless the
  // waiting request was answered and the connection closed first.
  io_->Serve(slot, mode.readable ? static_cast<uint32_t>(EPOLLIN) : 0u);
}

bool ConnectionLifetime::OpenHandler(Slot* slot) {
  SetPhase(slot, ConnectionPhase::kOpen);
  if (!Upcall(slot, [](ConnectionHandler& h, Connection& c) { h.OnOpen(c); })) {
    return false;
  }
  // Read draining_ with an RMW: RMWs on one variable are totally ordered.
  // If ours comes first, Drain's exchange reads its release and the scan
  // that follows sees this slot live; if Drain's comes first, we see it.
  // (A fence-based Dekker would do too, but ThreadSanitizer ignores fences.)
  if (draining_.fetch_or(0, std::memory_order_acq_rel) != 0 &&
      slot->owner.open()) {
    SetPhase(slot, ConnectionPhase::kClosing);
  }
  return true;
}

bool ConnectionLifetime::Upcall(
    Slot* slot, absl::FunctionRef<void(ConnectionHandler&, Connection&)> call) {
  AssertClaimed(slot);
  Connection conn(core_, slot, ConnectionId{ConnectionTable::IdOf(slot)});
  call(*slot->owner.handler, conn);
  if (slot->owner.phase == ConnectionPhase::kAborting) {
    Teardown(slot, absl::AbortedError("aborted by handler"));
    return false;
  }
  return true;
}

void ConnectionLifetime::OwnerClose(Slot* slot) {
  AssertClaimed(slot);
  if (slot->owner.open()) SetPhase(slot, ConnectionPhase::kClosing);
}

void ConnectionLifetime::OwnerShutdownWrite(Slot* slot) {
  AssertClaimed(slot);
  if (slot->owner.open() && !slot->owner.write_shut) {
    slot->owner.shutdown_due = true;
    if (TlsState* tls = TlsOf(slot->owner)) {
      // close_notify behind what was written, sent before the shutdown.
      CloseTlsAfterOutput(slot, *tls);
    }
  }
}

void ConnectionLifetime::OwnerAbort(Slot* slot) {
  AssertClaimed(slot);
  if (ConnectionPhaseAllows(slot->owner.phase, ConnectionPhase::kAborting)) {
    SetPhase(slot, ConnectionPhase::kAborting);
  }
}

bool ConnectionLifetime::CloseOrLinger(Slot* slot) {
  DCHECK(slot->owner.phase == ConnectionPhase::kClosing);
  int unread = 0;
  if (slot->owner.peer_closed ||
      ::ioctl(slot->owner.fd, FIONREAD, &unread) != 0 || unread == 0) {
    // Nothing unread: close() sends a FIN and the peer gets every byte.
    Teardown(slot, absl::OkStatus());
    return false;
  }
  // Closing with unread input would send a reset that can destroy the reply
  // in flight. Shut our side, drain and discard until the peer's EOF or the
  // linger timeout.
  ::shutdown(slot->owner.fd, SHUT_WR);
  SetPhase(slot, ConnectionPhase::kLingering);
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  slot->owner.linger_timer =
      loop_->AddTimer(absl::ToInt64Nanoseconds(options_.linger_timeout), 0,
                      [this, id] { requests_->Request(id, kAbortRequested); });
  return true;
}

void ConnectionLifetime::Teardown(Slot* slot, const absl::Status& reason,
                                  bool flush) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  if (owner.linger_timer != 0) timers_.Cancel(owner.linger_timer);
  // Per-connection timers and a connect's deadline: a queue entry that has
  // already fired raises kTimerDue on a stale id, a no-op.
  connection_timers_->CancelConnectionTimers(slot);
  // A handshaking TLS connection owes OnClose only if it was Connect's
  // (a failed connect); an accepted one never opened.
  if (owner.phase != ConnectionPhase::kNew &&
      (owner.phase != ConnectionPhase::kHandshaking ||
       owner.extras->tls->outbound)) {
    SetPhase(slot, ConnectionPhase::kClosed);
    Connection conn(core_, slot, ConnectionId{ConnectionTable::IdOf(slot)});
    owner.handler->OnClose(conn, reason);
  }
  if (flush && owner.fd >= 0) {
    // Stop(): a last chance for queued bytes; never blocks.
    MutexLock lock(&slot->out_mu);
    if (slot->out != nullptr) {
      size_t sent = 0;
      int error = 0;
      slot->out->Flush(owner.fd, &sent, &error);
    }
  }
  // No EPOLL_CTL_DEL: closing the last descriptor of the socket removes it
  // from epoll, and saves a syscall per connection. If the application
  // dup()ed Connection::fd(), the registration outlives this close; the
  // most it can deliver is one event (ONESHOT) carrying this connection's
  // id, which the generation check drops as stale.
  if (owner.fd >= 0) ::close(owner.fd);
  delete owner.handler;
  owner = OwnerState{};
  {
    // Under out_mu, so a concurrent Reactor::Write either lands before the
    // queue is dropped or sees the new generation and gives up.
    MutexLock lock(&slot->out_mu);
    RecycleOutputQueue(&slot->out);
    slot->tls_plain.reset();
    slot->out_bytes.store(0, std::memory_order_relaxed);
    table_.Free(slot);
  }
  Count(&WorkerCounters::closes);
}

void ConnectionLifetime::SweepIdle() {
  const int64_t now = net::CoarseMonotonicMillis();
  // Zero disables a limit; a queued backlog is judged by write_timeout
  // when one is set.
  const int64_t idle_limit =
      options_.idle_timeout > absl::ZeroDuration()
          ? absl::ToInt64Milliseconds(options_.idle_timeout)
          : INT64_MAX;
  const int64_t write_limit =
      options_.write_timeout > absl::ZeroDuration()
          ? absl::ToInt64Milliseconds(options_.write_timeout)
          : idle_limit;
  table_.ForEachLive([&](Slot* slot, uint64_t state) {
    // A claimed connection is being served right now: not idle.
    if (FlagsOf(state) & kClaimed) return;
    const int64_t limit = slot->out_bytes.load(std::memory_order_relaxed) > 0
                              ? write_limit
                              : idle_limit;
    if (now - slot->last_activity_ms.load(std::memory_order_relaxed) < limit) {
      return;
    }
    requests_->Request(ConnectionId{ConnectionTable::IdAt(slot, state)},
                       kTimedOut);
  });
}

void ConnectionLifetime::CloseAllAfterJoin() {
  const absl::Status reason = absl::CancelledError("reactor stopped");
  table_.ForEachLive([&](Slot* slot, uint64_t) {
    // Every worker has exited and Adopt refuses, so this thread owns every
    // connection now; take the claim formally so Free's invariant holds.
    // A parked one is already claimed: clear kParked first, so that a late
    // foreign TryClaim finds it busy instead of taking it over (found by
    // the Spin model).
    slot->state.fetch_and(~uint64_t{kParked}, std::memory_order_acq_rel);
    slot->state.fetch_or(kClaimed, std::memory_order_acq_rel);
    Teardown(slot, reason, /*flush=*/true);
  });
}

}  // namespace baton::internal
