// Internal: the owner's loop over a claimed connection (Serve): requests,
// a round of input and output, then a yield, a re-read, a park
// or the one re-arm per claim. Every function here runs with the caller
// holding the slot's claim.
#include "lib/internal/connection_io.h"

#include <glog/logging.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "lib/internal/connection_input.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_output.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/connection_tls.h"
#include "lib/internal/connector.h"
#include "lib/internal/round_policy.h"
#include "lib/internal/worker_context.h"
#include "lib/net/errno_status.h"

namespace baton::internal {

ConnectionIo::ConnectionIo(const ReactorOptions& options, Poller& poller,
                           Scheduler& scheduler, CounterSet& counters,
                           Parts parts)
    : options_(options),
      poller_(poller),
      scheduler_(scheduler),
      counters_(counters),
      lifetime_(parts.lifetime),
      input_(parts.input),
      output_(parts.output),
      connector_(parts.connector),
      connection_timers_(parts.connection_timers) {}

void ConnectionIo::Serve(Slot* slot, WorkKind kind, uint32_t revents,
                         int reread_round) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  // Taken over while parked: by a request (a Write to it, usually the
  // answer to what it relayed) or because its bound ran out.
  const ParkEnd park_end = TakeOverPark(kind, &owner.policy);
  switch (park_end) {
    case ParkEnd::kNotParked:
      break;
    case ParkEnd::kWoken:
      Count(&WorkerCounters::park_wakes);
      break;
    case ParkEnd::kExpired:
      Count(&WorkerCounters::park_expiries);
      break;
    case ParkEnd::kIdle:
      Count(&WorkerCounters::park_rearms);
      break;
  }
  DCHECK(kind != WorkKind::kReread || reread_round > 0);
  LOG_IF(DFATAL, kind == WorkKind::kPollMark)
      << "a poll mark carries no connection";
  RoundPlan plan =
      PlanServe(kind, revents, reread_round, park_end != ParkEnd::kNotParked);
  WorkerContext* worker = CurrentWorker();
  const bool on_reactor_thread = InReactorThread();
  const bool on_handshake_thread =
      worker != nullptr && worker->handshake_thread;
  // A step deferred once runs where it was taken: on a handshake thread,
  // or on a worker once it waited past tls_handshake_max_wait. A handshake
  // thread never defers.
  const bool deferred = kind == WorkKind::kHandshake;
  if (deferred && !on_handshake_thread) {
    Count(&WorkerCounters::tls_handshake_steps_overdue);
  }
  for (;;) {
    if (!deferred && !on_handshake_thread && DefersHandshake(owner)) {
      scheduler_.PushHandshake(slot, plan.revents);
      Count(&WorkerCounters::tls_handshake_steps_deferred);
      return;  // the claim went with it
    }
    size_t bytes_read = 0;
    owner.input_left = false;
    const uint64_t writes_before = worker != nullptr ? worker->writes : 0;
    if (!ServeRound(slot, plan.revents, &bytes_read)) return;
    RoundFacts facts;
    facts.bytes_read = bytes_read;
    facts.input_left = owner.input_left;
    facts.relayed = worker != nullptr && worker->writes != writes_before;
    facts.wants_input = owner.wants_input();
    facts.open = owner.open();
    facts.registered = owner.registered;
    facts.armed = owner.armed;
    facts.output_queued = slot->out_bytes.load(std::memory_order_relaxed) != 0;
    facts.write_error = owner.write_error != 0;
    // A handshake thread re-arms what it served (no re-read, no parking):
    // what follows the handshake is short work, for the workers.
    facts.on_reactor_thread = on_reactor_thread && !on_handshake_thread;
    facts.has_idle_thread = scheduler_.has_idle_thread();
    facts.has_queued_work = scheduler_.has_queued_work();
    facts.max_reread_rounds = max_reread_rounds_;
    facts.park_enabled = park_relays_;
    const RoundDecision decision = Decide(facts, &plan, &owner.policy);
    if (decision.reread_counted) {
      Count(&WorkerCounters::rereads);
      if (decision.reread_hit) Count(&WorkerCounters::reread_hits);
    }
    switch (decision.outcome) {
      case RoundOutcome::kYield:
        scheduler_.PushClaimed(slot, WorkKind::kYield);
        Count(&WorkerCounters::read_yields);
        return;
      case RoundOutcome::kPark:
        if (scheduler_.Park(slot)) {
          Count(&WorkerCounters::parks);
          return;  // no longer ours
        }
        // Refused: a request or event came meanwhile. Serve it.
        owner.armed = false;
        ServeAgain(&plan, &owner.policy);
        continue;
      case RoundOutcome::kReadLater:
      case RoundOutcome::kReread:
        scheduler_.PushClaimed(slot, WorkKind::kReread, decision.reread_round);
        return;
      case RoundOutcome::kRearm:
        if (!Rearm(slot)) return;  // the re-arm failed and tore it down
        if (ConnectionTable::Release(slot)) return;
        // An event may have been dropped as busy (disarming the fd).
        owner.armed = false;
        // Something arrived while we held the claim: an event on another
        // thread (dropped there, and disarmed by the kernel), a foreign
        // Write or a request. Look at everything again.
        ServeAgain(&plan, &owner.policy);
        continue;
    }
  }
}

bool ConnectionIo::DefersHandshake(OwnerState& owner) const {
  if (options_.tls_handshake_threads == 0) return false;
  if (owner.phase == ConnectionPhase::kHandshaking) return true;
  const TlsState* tls = TlsOf(owner);
  return tls != nullptr && tls->upgrading;
}

bool ConnectionIo::ServeRound(Slot* slot, uint32_t revents,
                              size_t* bytes_read) {
  OwnerState& owner = slot->owner;
  uint32_t requests = ConnectionTable::TakeRequests(slot);
  if (owner.phase == ConnectionPhase::kConnecting) {
    if (!connector_->ServeConnecting(slot, requests, revents)) return false;
    if (owner.phase == ConnectionPhase::kConnecting) return true;
    requests = 0;  // served while connecting; now open: go on as usual
  }
  if (requests & kAbortRequested) {
    lifetime_->Teardown(slot, absl::AbortedError("aborted"));
    return false;
  }
  if (requests & kTimedOut) {
    if (slot->out_bytes.load(std::memory_order_relaxed) > 0 &&
        options_.write_timeout > absl::ZeroDuration()) {
      Count(&WorkerCounters::write_timeouts);
      lifetime_->Teardown(slot, absl::DeadlineExceededError("write timeout"));
    } else {
      Count(&WorkerCounters::idle_timeouts);
      lifetime_->Teardown(slot, absl::DeadlineExceededError("idle timeout"));
    }
    return false;
  }
  if (requests & kCloseRequested) {
    if (owner.open()) {
      lifetime_->SetPhase(slot, ConnectionPhase::kClosing);
    } else if (owner.phase == ConnectionPhase::kHandshaking) {
      // Never opened: nothing to finish sending (OnClose only for an
      // outbound one, as for a cancelled connect).
      lifetime_->Teardown(slot, absl::CancelledError("closed in handshake"));
      return false;
    }
  }
  if (requests & (kResumeRequested | kShutdownRequested)) {
    if (requests & kResumeRequested) owner.user_paused = false;
    if (requests & kShutdownRequested) lifetime_->OwnerShutdownWrite(slot);
  }
  if ((requests & kTimerDue) && lifetime_->HandshakeTimedOut(slot)) {
    return false;
  }
  if ((requests & kTimerDue) && !connection_timers_->RunDueTimers(slot))
    return false;

  if (revents & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(owner.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    lifetime_->Teardown(
        slot, net::ErrnoStatus("socket error", err != 0 ? err : ECONNRESET));
    return false;
  }
  if (owner.wants_input() &&
      ((revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) || TlsInputLeft(owner))) {
    if (!input_->ReadInput(slot, revents, bytes_read)) return false;
  }
  if (owner.write_error != 0) {
    lifetime_->Teardown(slot, net::ErrnoStatus("send", owner.write_error));
    return false;
  }
  if (!output_->FlushOutput(slot)) return false;
  if (TlsState* tls = TlsOf(owner); tls != nullptr && tls->plaintext_left) {
    // The engine holds plaintext the socket will not signal for: once
    // reading may go on (ResumeReading, a drained backlog), serve again.
    output_->MaybeResumeAfterBacklog(slot);
    if (owner.wants_input()) owner.input_left = true;
  }
  if (owner.shutdown_due && !output_->MaybeShutdownWrite(slot)) return false;
  if (owner.phase == ConnectionPhase::kClosing &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    if (!lifetime_->CloseOrLinger(slot)) return false;
  }
  if ((revents & EPOLLHUP) && owner.peer_closed &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    // Both directions are gone and nothing is left to send.
    lifetime_->Teardown(slot, absl::OkStatus());
    return false;
  }
  return true;
}

bool ConnectionIo::Rearm(Slot* slot) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  output_->MaybeResumeAfterBacklog(slot);
  uint32_t interest = 0;
  if (owner.phase == ConnectionPhase::kConnecting) {
    if (owner.fd < 0) return true;  // backing off: no socket to arm
    interest = EPOLLOUT;            // completion (or failure) of connect
  } else {
    if (owner.wants_input()) interest |= EPOLLIN | EPOLLRDHUP;
    if (slot->out_bytes.load(std::memory_order_acquire) > 0) {
      interest |= EPOLLOUT;
    }
  }
  const bool add = !owner.registered;
  if (!add && owner.armed && owner.armed_interest == interest) {
    // Claimed through Request (a foreign Write, a timer, a resume) while
    // armed, and no event taken since: epoll would be told what it has.
    Count(&WorkerCounters::rearms_skipped);
    return true;
  }
  if (const int err =
          poller_.Arm(owner.fd, add, interest, ConnectionTable::IdOf(slot));
      err != 0) {
    LOG(ERROR) << "epoll_ctl(" << (add ? "ADD" : "MOD") << ", fd " << owner.fd
               << "): " << std::strerror(err);
    lifetime_->Teardown(slot, net::ErrnoStatus("epoll_ctl", err));
    return false;
  }
  if (!add) Count(&WorkerCounters::rearms);
  owner.registered = true;
  owner.armed = true;
  owner.armed_interest = interest;
  return true;
}

}  // namespace baton::internal
