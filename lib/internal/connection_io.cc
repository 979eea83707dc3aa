// Internal: the owner's loop over a claimed connection (Serve): requests,
// a round of input and output, then a yield, a speculative re-read, a park
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
#include "lib/internal/connector.h"
#include "lib/internal/worker_context.h"
#include "lib/net/errno_status.h"

namespace baton::internal {
namespace {

// Re-arms after a missed re-read before the next try (OwnerState::
// reread_backoff).
constexpr int kMinRereadBackoff = 8;
constexpr int kMaxRereadBackoff = 64;

}  // namespace

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
  // Taken over while parked: by a request (a Write to it, usually the
  // answer to what it relayed) or because its bound ran out.
  const bool unparked = slot->owner.parked;
  if (unparked) {
    slot->owner.parked = false;
    CountParkEnd(slot, kind);
  }
  // Read after the other ready work, as a re-read (if there is such work),
  // instead of now (see kRequest below).
  bool read_later = false;
  switch (kind) {
    case WorkKind::kEvent:
      reread_round = 0;
      break;
    case WorkKind::kReread:
      revents = EPOLLIN;
      DCHECK_GT(reread_round, 0);
      break;
    case WorkKind::kYield:
      revents = EPOLLIN;  // it yielded with input left (ReadInput)
      reread_round = 0;
      break;
    case WorkKind::kRequest:
      // Nothing known to be readable. Woken by a request while parked (an
      // event never finds it parked, it is disarmed): its input follows
      // what is being sent now, so read it after the other ready work.
      revents = 0;
      reread_round = 0;
      read_later = unparked;
      break;
    case WorkKind::kParkExpired:
      revents = EPOLLIN;
      reread_round = 1;  // read it as a re-read: a miss re-arms it
      break;
    case WorkKind::kParkIdle:
      // Every thread went idle: re-arm it (below), nothing to read first.
      revents = 0;
      reread_round = 0;
      break;
    case WorkKind::kPollMark:
      // Never returned by Scheduler::Next, so never here: nothing is known
      // to be readable.
      LOG(DFATAL) << "a poll mark carries no connection";
      revents = 0;
      reread_round = 0;
      break;
  }
  bool speculative = reread_round > 0;
  WorkerContext* worker = CurrentWorker();
  for (;;) {
    size_t bytes_read = 0;
    slot->owner.input_left = false;
    const uint64_t writes_before = worker != nullptr ? worker->writes : 0;
    if (!ServeRound(slot, revents, &bytes_read)) return;
    if (speculative) {
      speculative = false;
      Count(&WorkerCounters::speculative_reads);
      if (bytes_read > 0) {
        Count(&WorkerCounters::speculative_hits);
        if (slot->owner.speculation < 3) ++slot->owner.speculation;
        slot->owner.reread_backoff = kMinRereadBackoff;
      } else {
        slot->owner.speculation = 0;
        slot->owner.reread_skips = 0;
      }
    }
    if (slot->owner.input_left && slot->owner.wants_input()) {
      // Input is waiting, and so is other ready work: read on after that
      // work (the claim travels with the item, as for a re-read), so a bulk
      // sender takes turns with the others, and what it was sent moves on
      // (a proxy's peer flushes each chunk before the next is read).
      scheduler_.PushClaimed(slot, WorkKind::kYield);
      Count(&WorkerCounters::read_yields);
      return;
    }
    if (bytes_read > 0 && worker != nullptr &&
        worker->writes != writes_before && MayPark(slot)) {
      // It relayed what it read: its next input answers that, and comes
      // with a Write to it, which takes it over (Scheduler, "Parking").
      slot->owner.parked = true;
      if (scheduler_.Park(slot)) {
        Count(&WorkerCounters::parks);
        return;  // no longer ours
      }
      slot->owner.parked = false;
      // Refused: a request or event came meanwhile. Serve it.
      slot->owner.armed = false;
      revents = EPOLLIN | EPOLLOUT;
      continue;
    }
    if (read_later && bytes_read == 0 && scheduler_.has_queued_work() &&
        MayReread(slot)) {
      scheduler_.PushClaimed(slot, WorkKind::kReread, /*reread_round=*/1);
      return;
    }
    read_later = false;
    if (bytes_read > 0 && reread_round < max_reread_rounds_ &&
        MayReread(slot)) {
      // Keep the claim: the connection goes to the back of the ready queue,
      // to be read again (by whichever thread is free) after the work
      // queued before it, and re-armed only if that read finds nothing.
      scheduler_.PushClaimed(slot, WorkKind::kReread, reread_round + 1);
      return;
    }
    if (!Rearm(slot)) return;  // the re-arm failed and tore it down
    if (ConnectionTable::Release(slot)) return;
    // An event may have been dropped as busy (disarming the fd).
    slot->owner.armed = false;
    // Something arrived while we held the claim: an event on another thread
    // (dropped there, and disarmed by the kernel), a foreign Write or a
    // request. Look at everything again; a read that finds nothing is cheap.
    revents = EPOLLIN | EPOLLOUT;
  }
}

bool ConnectionIo::MayPark(Slot* slot) {
  OwnerState& owner = slot->owner;
  // Only a connection known to be disarmed (an event or a re-read brought
  // it here, not a request while it was armed), with nothing of its own
  // to send, may wait off epoll.
  if (!park_relays_ || !InReactorThread() || owner.armed || !owner.registered ||
      !owner.open() || !owner.wants_input() || owner.write_error != 0 ||
      slot->out_bytes.load(std::memory_order_relaxed) != 0) {
    return false;
  }
  if (owner.park_skips > 0) {
    --owner.park_skips;
    return false;
  }
  return true;
}

void ConnectionIo::CountParkEnd(Slot* slot, WorkKind kind) {
  OwnerState& owner = slot->owner;
  if (kind != WorkKind::kParkExpired && kind != WorkKind::kParkIdle) {
    Count(&WorkerCounters::park_wakes);
    owner.park_backoff = 0;
    return;
  }
  // Its answer did not come as a Write in time (it may not be a relay's
  // side at all: a chat client talks on its own), or the reactor ran dry
  // first (a lightly loaded proxy, where parking saves nothing). Park it
  // ever more rarely.
  Count(kind == WorkKind::kParkIdle ? &WorkerCounters::park_rearms
                                    : &WorkerCounters::park_expiries);
  owner.park_backoff = static_cast<uint8_t>(
      std::min(owner.park_backoff == 0 ? 1 : 2 * owner.park_backoff, 64));
  owner.park_skips = owner.park_backoff;
}

bool ConnectionIo::MayReread(Slot* slot) {
  OwnerState& owner = slot->owner;
  // With a thread idle, the leader is waiting for the kernel: re-arming
  // costs no latency, and a queued re-read would only wake that thread to
  // read too early.
  if (max_reread_rounds_ == 0 || !InReactorThread() ||
      scheduler_.has_idle_thread() || !owner.registered || !owner.open() ||
      !owner.wants_input() || owner.write_error != 0 ||
      slot->out_bytes.load(std::memory_order_relaxed) != 0) {
    return false;
  }
  if (owner.speculation == 0) {
    // Its last re-read found nothing: re-arm at once for a while, then give
    // speculation another chance (the peer's pace may have changed). A
    // connection whose peer never answers that fast (a proxy's reading
    // side) is tried ever more rarely.
    if (++owner.reread_skips >= owner.reread_backoff) {
      owner.speculation = 1;
      owner.reread_backoff = static_cast<uint8_t>(
          std::min(2 * owner.reread_backoff, kMaxRereadBackoff));
    }
    return false;
  }
  return true;
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
  if ((requests & kCloseRequested) && owner.open()) {
    lifetime_->SetPhase(slot, ConnectionPhase::kClosing);
  }
  if (requests & (kResumeRequested | kShutdownRequested)) {
    if (requests & kResumeRequested) owner.user_paused = false;
    if (requests & kShutdownRequested) lifetime_->OwnerShutdownWrite(slot);
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
  if (owner.wants_input() && (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
    if (!input_->ReadInput(slot, revents, bytes_read)) return false;
  }
  if (owner.write_error != 0) {
    lifetime_->Teardown(slot, net::ErrnoStatus("send", owner.write_error));
    return false;
  }
  if (!output_->FlushOutput(slot)) return false;
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
