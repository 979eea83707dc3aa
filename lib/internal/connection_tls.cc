// Internal: TLS connections (a TLS listener's, a TLS Connect's, or one
// upgraded by Connection::StartTls, connection_starttls.cc), wired through
// the same components as plain ones (see lib/tls/tls_session.h for the engine's
// contract). The plain paths test one pointer (TlsOf) and come here only
// for a TLS connection. Every function here runs with the caller holding
// the slot's claim.
#include "lib/internal/connection_tls.h"

#include <glog/logging.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_input.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_output.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/worker_context.h"
#include "lib/net/clock.h"
#include "lib/net/errno_status.h"

namespace baton::internal {
namespace {

// As ConnectionInput's: socket reads one readiness event may take.
constexpr int kMaxTlsReadsPerEvent = 16;

}  // namespace

bool ConnectionLifetime::StartTls(
    Slot* slot, const std::shared_ptr<const tls::TlsContext>& context) {
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
      tls::TlsSession::Create(context);
  if (!session.ok()) {
    LOG_EVERY_N(ERROR, 1000) << "TLS session: " << session.status();
    Teardown(slot, session.status());
    return false;
  }
  auto state = std::make_unique<TlsState>();
  state->session = *std::move(session);
  state->outbound = !context->is_server();
  const absl::Duration timeout = context->handshake_timeout();
  if (timeout != absl::InfiniteDuration()) {
    state->handshake_deadline_ns = net::DeadlineAfter(
        net::MonotonicNanos(), absl::ToInt64Nanoseconds(timeout));
    state->handshake_timer =
        connection_timers_->AddTimerDue(slot, state->handshake_deadline_ns);
  }
  ExtrasOf(slot->owner).tls = std::move(state);
  // kHandshaking always has its TlsState (Teardown reads it).
  SetPhase(slot, ConnectionPhase::kHandshaking);
  slot->state.fetch_or(kTlsOutput, std::memory_order_acq_rel);
  // Drain closes every connection it finds; one it missed is closed here
  // (the same read-modify-write as OpenHandler's).
  if (draining_.fetch_or(0, std::memory_order_acq_rel) != 0) {
    Teardown(slot, absl::CancelledError("draining"));
    return false;
  }
  TlsState& tls = *slot->owner.extras->tls;
  if (tls.outbound) {
    tls.session->Read(nullptr, 0);  // the ClientHello, sent by the round
    QueueTlsOutput(slot, tls);
  }
  return true;
}

bool ConnectionLifetime::OpenTls(Slot* slot) {
  TlsState& tls = *slot->owner.extras->tls;
  if (tls.handshake_timer != 0) timers_.Cancel(tls.handshake_timer);
  tls.handshake_timer = 0;
  tls.handshake_deadline_ns = 0;
  tls.peer = tls.session->Peer();
  Count(&WorkerCounters::tls_handshakes);
  if (!tls.upgrading) return OpenHandler(slot);
  tls.upgrading = false;  // StartTls: the handler is open already
  if (!slot->owner.open()) return true;
  return Upcall(slot,
                [](ConnectionHandler& h, Connection& c) { h.OnTlsReady(c); });
}

void ConnectionLifetime::FailHandshake(Slot* slot, const absl::Status& reason) {
  Count(&WorkerCounters::tls_handshake_failures);
  VLOG(1) << "TLS handshake failed (fd " << slot->owner.fd << "): " << reason;
  if (TlsState* tls = TlsOf(slot->owner)) {
    QueueTlsOutput(slot, *tls);
    const std::string& answer = tls->session->context().plain_http_response();
    if (tls->session->plain_http_request() && !answer.empty()) {
      // A plain HTTP client reads a plaintext answer (OpenSSL queued no
      // alert for it); the close follows the flush, as for an alert.
      MutexLock lock(&slot->out_mu);
      if (slot->out == nullptr) slot->out = NewOutputQueue();
      slot->out->Append(answer);
      slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
    }
  }
  Teardown(slot, reason, /*flush=*/true);  // the flush sends our alert
}

bool ConnectionLifetime::HandshakeTimedOut(Slot* slot) {
  TlsState* tls = TlsOf(slot->owner);
  if (tls == nullptr ||
      (slot->owner.phase != ConnectionPhase::kHandshaking && !tls->upgrading) ||
      tls->handshake_deadline_ns == 0 ||
      net::MonotonicNanos() < tls->handshake_deadline_ns) {
    return false;
  }
  tls->handshake_timer = 0;  // it fired
  FailHandshake(slot, absl::DeadlineExceededError("TLS handshake timeout"));
  return true;
}

bool ConnectionInput::ReadTlsInput(Slot* slot, TlsState& tls, uint32_t revents,
                                   size_t* bytes_read) {
  OwnerState& owner = slot->owner;
  WorkerContext* worker = CurrentWorker();
  const size_t capacity = worker->read_buffer_size;
  const bool lingering = owner.phase == ConnectionPhase::kLingering;
  if (tls.plaintext_left && !lingering) {
    // What the engine still holds goes first: the socket will not signal
    // for it (ResumeReading, a drained backlog, a yield).
    if (!DrainTls(slot, tls)) return false;
    if (tls.plaintext_left || !owner.wants_input()) return true;
  }
  for (int round = 0; round < kMaxTlsReadsPerEvent; ++round) {
    char* buffer = worker->read_buffer.get();
    const ssize_t n = ::read(owner.fd, buffer, capacity);
    if (n > 0) {
      *bytes_read += static_cast<size_t>(n);
      Count(&WorkerCounters::bytes_read, static_cast<uint64_t>(n));
      if (track_activity_) {
        slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
      if (!lingering) {  // lingering: discarded
        tls.session->Feed(absl::string_view(buffer, static_cast<size_t>(n)));
        if (!DrainTls(slot, tls)) return false;
        if (tls.plaintext_left || !owner.wants_input()) break;
      }
      if (static_cast<size_t>(n) < capacity &&
          !(revents & (EPOLLRDHUP | EPOLLHUP))) {
        break;
      }
      if (scheduler_.has_queued_work() && counters_.InWorkerThread()) {
        owner.input_left = true;
        break;
      }
      continue;
    }
    if (n == 0) {
      if (lingering) {
        owner.peer_closed = true;
        lifetime_->Teardown(slot, absl::OkStatus());
        return false;
      }
      // Read then reports kClosed (close_notify came first: OnPeerClosed)
      // or kTruncated / kFailed (torn down).
      tls.session->FeedEof();
      if (!DrainTls(slot, tls)) return false;
      owner.peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    lifetime_->Teardown(slot, net::ErrnoStatus("read", errno));
    return false;
  }
  return true;
}

bool ConnectionInput::DrainTls(Slot* slot, TlsState& tls) {
  OwnerState& owner = slot->owner;
  tls::TlsSession& session = *tls.session;
  tls.plaintext_left = false;
  if (owner.phase == ConnectionPhase::kHandshaking || tls.upgrading) {
    // Advances the handshake only (no plaintext is taken before OnOpen).
    session.Read(nullptr, 0);
    QueueTlsOutput(slot, tls);
    if (session.state() == tls::TlsSession::State::kOpen &&
        !lifetime_->OpenTls(slot)) {
      return false;
    }
  }
  WorkerContext* worker = CurrentWorker();
  const size_t capacity = worker->read_buffer_size;
  while (owner.open() && session.state() == tls::TlsSession::State::kOpen) {
    if (!owner.wants_input() || owner.write_error != 0) {
      tls.plaintext_left = true;  // paused or closing: left for later
      return true;
    }
    // Behind input the handler retained, as a plain read would go.
    InputBuffer* held =
        owner.extras->input.empty() ? nullptr : &owner.extras->input;
    char* buffer =
        held == nullptr ? worker->read_buffer.get() : held->Reserve(capacity);
    const size_t n = session.Read(buffer, capacity);
    QueueTlsOutput(slot, tls);  // a key update, a ticket, an alert
    if (n == 0) break;
    if (held != nullptr) held->Commit(n);
    const absl::string_view data =
        held == nullptr ? absl::string_view(buffer, n)
                        : absl::string_view(held->data(), held->size());
    if (!Deliver(slot, data, held != nullptr)) return false;
    if (slot->out_bytes.load(std::memory_order_relaxed) >
        options_.output_high_water) {
      owner.hwm_paused = true;
    }
  }
  switch (session.state()) {
    case tls::TlsSession::State::kHandshaking:
    case tls::TlsSession::State::kOpen:
      return true;
    case tls::TlsSession::State::kClosed:
      // The peer's close_notify: its end of the stream, like a plain EOF.
      if (owner.peer_closed || !owner.open()) return true;
      owner.peer_closed = true;
      if (!lifetime_->Upcall(slot, [](ConnectionHandler& h, Connection& c) {
            h.OnPeerClosed(c);
          })) {
        return false;
      }
      if (owner.write_shut && owner.open()) {
        lifetime_->SetPhase(slot, ConnectionPhase::kClosing);
      }
      return true;
    case tls::TlsSession::State::kTruncated:
    case tls::TlsSession::State::kFailed:
      break;
  }
  QueueTlsOutput(slot, tls);
  if (owner.phase == ConnectionPhase::kHandshaking || tls.upgrading) {
    lifetime_->FailHandshake(slot, session.status());
  } else {
    lifetime_->Teardown(slot, session.status(), /*flush=*/true);
  }
  return false;
}

}  // namespace baton::internal
