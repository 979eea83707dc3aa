// Internal: serving a claimed connection. The owner's loop (Serve), reads
// delivered to OnData, output flushed and OnDrained, the one re-arm per
// claim, re-reads, and the handler-side Write / SendFile.
// Every function here runs with the caller holding the slot's claim.
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/internal/connection_extras.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/reactor_core.h"
#include "lib/internal/round_policy.h"
#include "lib/internal/socket_util.h"
#include "lib/net/clock.h"
#include "lib/net/errno_status.h"
#include "lib/net/socket_options.h"

namespace baton::internal {
namespace {

// How many reads one readiness event may take before the connection goes
// back to epoll, so one fast sender cannot starve the others on its thread.
constexpr int kMaxReadsPerEvent = 16;

// Drained output queues a worker keeps (RecycleOutputQueue).
constexpr size_t kMaxSpareQueues = 64;

// Reading resumes once the backlog has drained to half the high-water mark.
void MaybeResumeAfterBacklog(Slot* slot, size_t high_water) {
  if (slot->owner.hwm_paused &&
      slot->out_bytes.load(std::memory_order_acquire) <= high_water / 2) {
    slot->owner.hwm_paused = false;
  }
}

}  // namespace

std::unique_ptr<OutputQueue> NewOutputQueue() {
  WorkerContext* worker = CurrentWorker();
  if (worker == nullptr || worker->spare_queues.empty()) {
    return std::make_unique<OutputQueue>();
  }
  std::unique_ptr<OutputQueue> queue = std::move(worker->spare_queues.back());
  worker->spare_queues.pop_back();
  return queue;
}

void RecycleOutputQueue(std::unique_ptr<OutputQueue>* queue) {
  WorkerContext* worker = CurrentWorker();
  if (*queue == nullptr || worker == nullptr ||
      worker->spare_queues.size() >= kMaxSpareQueues) {
    queue->reset();
    return;
  }
  (*queue)->Clear();
  worker->spare_queues.push_back(std::move(*queue));
}

void ReactorCore::Serve(Slot* slot, WorkKind kind, uint32_t revents,
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
      Add(&WorkerCounters::park_wakes);
      break;
    case ParkEnd::kExpired:
      Add(&WorkerCounters::park_expiries);
      break;
    case ParkEnd::kIdle:
      Add(&WorkerCounters::park_rearms);
      break;
  }
  DCHECK(kind != WorkKind::kReread || reread_round > 0);
  LOG_IF(DFATAL, kind == WorkKind::kPollMark)
      << "a poll mark carries no connection";
  RoundPlan plan =
      PlanServe(kind, revents, reread_round, park_end != ParkEnd::kNotParked);
  WorkerContext* worker = CurrentWorker();
  const bool on_reactor_thread = InReactorThread();
  for (;;) {
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
    facts.on_reactor_thread = on_reactor_thread;
    facts.has_idle_thread = scheduler_.has_idle_thread();
    facts.has_queued_work = scheduler_.has_queued_work();
    facts.max_reread_rounds = max_reread_rounds_;
    facts.park_enabled = park_relays_;
    const RoundDecision decision = Decide(facts, &plan, &owner.policy);
    if (decision.reread_counted) {
      Add(&WorkerCounters::rereads);
      if (decision.reread_hit) Add(&WorkerCounters::reread_hits);
    }
    switch (decision.outcome) {
      case RoundOutcome::kYield:
        scheduler_.PushClaimed(slot, WorkKind::kYield);
        Add(&WorkerCounters::read_yields);
        return;
      case RoundOutcome::kPark:
        if (scheduler_.Park(slot)) {
          Add(&WorkerCounters::parks);
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

bool ReactorCore::ServeRound(Slot* slot, uint32_t revents, size_t* bytes_read) {
  OwnerState& owner = slot->owner;
  uint32_t requests = ConnectionTable::TakeRequests(slot);
  if (owner.phase == ConnectionPhase::kConnecting) {
    if (!ServeConnecting(slot, requests, revents)) return false;
    if (owner.phase == ConnectionPhase::kConnecting) return true;
    requests = 0;  // served while connecting; now open: go on as usual
  }
  if (requests & kAbortRequested) {
    Teardown(slot, absl::AbortedError("aborted"));
    return false;
  }
  if (requests & kTimedOut) {
    if (slot->out_bytes.load(std::memory_order_relaxed) > 0 &&
        options_.write_timeout > absl::ZeroDuration()) {
      Add(&WorkerCounters::write_timeouts);
      Teardown(slot, absl::DeadlineExceededError("write timeout"));
    } else {
      Add(&WorkerCounters::idle_timeouts);
      Teardown(slot, absl::DeadlineExceededError("idle timeout"));
    }
    return false;
  }
  if ((requests & kCloseRequested) && owner.open()) {
    SetPhase(slot, ConnectionPhase::kClosing);
  }
  if (requests & (kResumeRequested | kShutdownRequested)) {
    if (requests & kResumeRequested) owner.user_paused = false;
    if (requests & kShutdownRequested) OwnerShutdownWrite(slot);
  }
  if ((requests & kTimerDue) && !RunDueTimers(slot)) return false;

  if (revents & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(owner.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    Teardown(slot,
             net::ErrnoStatus("socket error", err != 0 ? err : ECONNRESET));
    return false;
  }
  if (owner.wants_input() && (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
    if (!ReadInput(slot, revents, bytes_read)) return false;
  }
  if (owner.write_error != 0) {
    Teardown(slot, net::ErrnoStatus("send", owner.write_error));
    return false;
  }
  if (!FlushOutput(slot)) return false;
  if (owner.shutdown_due && !MaybeShutdownWrite(slot)) return false;
  if (owner.phase == ConnectionPhase::kClosing &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    if (!CloseOrLinger(slot)) return false;
  }
  if ((revents & EPOLLHUP) && owner.peer_closed &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    // Both directions are gone and nothing is left to send.
    Teardown(slot, absl::OkStatus());
    return false;
  }
  return true;
}

bool ReactorCore::ReadInput(Slot* slot, uint32_t revents, size_t* bytes_read) {
  OwnerState& owner = slot->owner;
  WorkerContext* worker = CurrentWorker();
  const size_t capacity = worker->read_buffer_size;
  const size_t retained_block_limit =
      options_.max_retained_input > SIZE_MAX - capacity
          ? SIZE_MAX
          : options_.max_retained_input + capacity;
  for (int round = 0; round < kMaxReadsPerEvent; ++round) {
    // Input retained by the handler: read straight behind it, so it and
    // the new bytes are handed over as one piece without another copy.
    InputBuffer* held = owner.extras && !owner.extras->input.empty() &&
                                owner.phase != ConnectionPhase::kLingering
                            ? &owner.extras->input
                            : nullptr;
    // The block grows by doubling, but never past what Deliver can be
    // asked to keep plus one read: the bound max_retained_input documents.
    char* buffer = held == nullptr
                       ? worker->read_buffer.get()
                       : held->Reserve(capacity, retained_block_limit);
    const ssize_t n = ::read(owner.fd, buffer, capacity);
    if (n > 0) {
      if (held != nullptr) held->Commit(static_cast<size_t>(n));
      *bytes_read += static_cast<size_t>(n);
      Add(&WorkerCounters::bytes_read, static_cast<uint64_t>(n));
      if (track_activity_) {
        slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
      if (owner.phase != ConnectionPhase::kLingering) {
        const absl::string_view data =
            held == nullptr ? absl::string_view(buffer, static_cast<size_t>(n))
                            : absl::string_view(held->data(), held->size());
        if (!Deliver(slot, data, held != nullptr)) return false;
        if (!owner.open() || owner.user_paused || owner.write_error != 0) {
          break;
        }
        if (slot->out_bytes.load(std::memory_order_relaxed) >
            options_.output_high_water) {
          owner.hwm_paused = true;
          break;
        }
      }
      // A short read drained the socket, unless the peer also shut down, in
      // which case the next read returns its EOF. Level triggering brings
      // us back for anything that arrives later.
      if (static_cast<size_t>(n) < capacity &&
          !(revents & (EPOLLRDHUP | EPOLLHUP))) {
        break;
      }
      // More is probably waiting. With other ready work queued, take turns
      // (Serve queues this connection behind it) instead of reading on.
      if (scheduler_.has_queued_work() && InReactorThread()) {
        owner.input_left = true;
        break;
      }
      continue;
    }
    if (n == 0) {
      owner.peer_closed = true;
      if (owner.phase == ConnectionPhase::kLingering) {
        Teardown(slot, absl::OkStatus());
        return false;
      }
      if (!Upcall(slot, [](ConnectionHandler& h, Connection& c) {
            h.OnPeerClosed(c);
          })) {
        return false;
      }
      // Both directions done (ShutdownWrite earlier): close.
      if (owner.write_shut && owner.open()) {
        SetPhase(slot, ConnectionPhase::kClosing);
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Teardown(slot, net::ErrnoStatus("read", errno));
    return false;
  }
  return true;
}

bool ReactorCore::Deliver(Slot* slot, absl::string_view data, bool in_extras) {
  OwnerState& owner = slot->owner;
  owner.delivered = data.size();
  owner.retain = 0;
  if (!Upcall(slot, [data](ConnectionHandler& h, Connection& c) {
        h.OnData(c, data);
      })) {
    return false;  // torn down: the slot is no longer ours to look at
  }
  const size_t keep = owner.retain;
  owner.delivered = 0;
  owner.retain = 0;
  if (keep == 0) {
    // Everything consumed: the common case copies nothing. The block is
    // given back, so that idle connections hold no input memory.
    if (in_extras) owner.extras->input.Release();
    return true;
  }
  if (keep > options_.max_retained_input) {
    Teardown(slot,
             absl::ResourceExhaustedError(
                 absl::StrCat("retained input limit: ", keep,
                              " bytes retained, max_retained_input is ",
                              options_.max_retained_input)),
             /*flush=*/true);
    return false;
  }
  InputBuffer& input = ExtrasOf(owner).input;
  if (in_extras) {
    input.Consume(data.size() - keep);  // moves `start` only
    // A short tail left in a block sized for reads (a partial line after
    // a few complete ones) moves to a block of its own size, so a waiting
    // connection holds what it keeps, not the read's room. A message
    // assembled over many reads fills its block at least half and stays.
    input.ShrinkToFit();
  } else {
    // From the thread's read buffer, which the next connection reuses.
    std::memcpy(input.Reserve(keep), data.data() + data.size() - keep, keep);
    input.Commit(keep);
    Add(&WorkerCounters::retained_bytes, keep);
  }
  return true;
}

bool ReactorCore::MaybeShutdownWrite(Slot* slot) {
  OwnerState& owner = slot->owner;
  if (!owner.open() || slot->out_bytes.load(std::memory_order_acquire) > 0) {
    return true;  // closing anyway, or output still to send
  }
  owner.shutdown_due = false;
  owner.write_shut = true;
  ::shutdown(owner.fd, SHUT_WR);
  if (owner.peer_closed) {
    Teardown(slot, absl::OkStatus());  // both directions done
    return false;
  }
  return true;
}

bool ReactorCore::SendQueued(Slot* slot, OutputQueue::FlushResult* result,
                             int* error) {
  size_t sent = 0;
  {
    MutexLock lock(&slot->out_mu);
    if (slot->out == nullptr || slot->out->empty()) return false;
    *result = slot->out->Flush(slot->owner.fd, &sent, error);
    if (*result == OutputQueue::FlushResult::kDrained) {
      RecycleOutputQueue(&slot->out);  // an idle connection keeps none
      slot->out_bytes.store(0, std::memory_order_relaxed);
    } else {
      slot->out_bytes.store(slot->out->bytes(), std::memory_order_relaxed);
    }
  }
  if (sent > 0) {
    Add(&WorkerCounters::bytes_written, sent);
    if (track_activity_) {
      slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                   std::memory_order_relaxed);
    }
  }
  return true;
}

bool ReactorCore::FlushOutput(Slot* slot) {
  OwnerState& owner = slot->owner;
  if (owner.write_shut && slot->out_bytes.load(std::memory_order_acquire) > 0) {
    // Reactor::Write after ShutdownWrite: nowhere to send it.
    MutexLock lock(&slot->out_mu);
    RecycleOutputQueue(&slot->out);
    slot->out_bytes.store(0, std::memory_order_relaxed);
  }
  if (owner.corked) {
    // A WriteHint::kMoreFollows send is held by the kernel. Usually queued
    // output (a file body) follows and its send pushes both; if nothing
    // followed, push it now (setting TCP_NODELAY sends pending frames).
    owner.corked = false;
    if (slot->out_bytes.load(std::memory_order_acquire) == 0) {
      net::SetNoDelay(owner.fd);
    }
  }
  if (slot->out_bytes.load(std::memory_order_acquire) == 0) {
    if (!owner.drained_due) return true;
  } else {
    OutputQueue::FlushResult result;
    int error = 0;
    if (!SendQueued(slot, &result, &error)) return true;
    if (result == OutputQueue::FlushResult::kError) {
      Teardown(slot, net::ErrnoStatus("send", error));
      return false;
    }
    if (result == OutputQueue::FlushResult::kBlocked) {
      owner.drained_due = true;
      return true;
    }
  }
  // Drained after a backlog.
  owner.drained_due = false;
  MaybeResumeAfterBacklog(slot, options_.output_high_water);
  if (owner.open()) {
    return Upcall(slot,
                  [](ConnectionHandler& h, Connection& c) { h.OnDrained(c); });
  }
  return true;
}

void ReactorCore::SendQueuedNow(Slot* slot) {
  AssertClaimed(slot);
  // A handler on this thread wrote to this connection (Reactor::Write, a
  // proxy relaying a message) and Request took its claim: send now, so the
  // message leaves before the rest of the ready queue is served, instead
  // of when the connection's item comes up. This runs inside the writer's
  // callback, so no upcall happens here: a flush owes OnDrained, which the
  // queued item delivers (drained_due), and a send error is left in
  // write_error for the item to tear the connection down.
  OwnerState& owner = slot->owner;
  if (!owner.open() || owner.write_error != 0 || owner.write_shut ||
      owner.corked) {
    return;
  }
  OutputQueue::FlushResult result;
  int error = 0;
  if (!SendQueued(slot, &result, &error)) return;
  Add(&WorkerCounters::sends_at_write);
  if (result == OutputQueue::FlushResult::kError) {
    owner.write_error = error;
    return;
  }
  owner.drained_due = true;
}

bool ReactorCore::Rearm(Slot* slot) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  MaybeResumeAfterBacklog(slot, options_.output_high_water);
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
    Add(&WorkerCounters::rearms_skipped);
    return true;
  }
  if (const int err =
          poller_.Arm(owner.fd, add, interest, ConnectionTable::IdOf(slot));
      err != 0) {
    LOG(ERROR) << "epoll_ctl(" << (add ? "ADD" : "MOD") << ", fd " << owner.fd
               << "): " << std::strerror(err);
    Teardown(slot, net::ErrnoStatus("epoll_ctl", err));
    return false;
  }
  if (!add) Add(&WorkerCounters::rearms);
  owner.registered = true;
  owner.armed = true;
  owner.armed_interest = interest;
  return true;
}

void ReactorCore::OwnerWrite(Slot* slot, absl::string_view data, bool more) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  if (data.empty() || !owner.open() || owner.write_error != 0 ||
      owner.shutdown_due || owner.write_shut) {
    return;
  }
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr || slot->out->empty()) {
    // Nothing queued: send directly, no copy. The lock keeps a foreign
    // Write from slipping its bytes between ours.
    const int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0);
    owner.corked = more;
    ssize_t n;
    do {
      n = ::send(owner.fd, data.data(), data.size(), flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        owner.write_error = errno;
        return;
      }
      n = 0;
    }
    if (n > 0) {
      Add(&WorkerCounters::bytes_written, static_cast<uint64_t>(n));
      if (track_activity_) {
        slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
    }
    if (static_cast<size_t>(n) == data.size()) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (slot->out == nullptr) slot->out = NewOutputQueue();
  slot->out->Append(data);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  owner.drained_due = true;
}

bool ReactorCore::OwnerSendFile(Slot* slot, int file_fd, int64_t offset,
                                int64_t length, bool transfer) {
  AssertClaimed(slot);
  ScopedFd file(transfer ? file_fd : -1);
  if (!slot->owner.open() || slot->owner.write_error != 0 ||
      slot->owner.shutdown_due || slot->owner.write_shut) {
    return false;
  }
  if (length <= 0) return true;
  if (!transfer) {
    file.Reset(::fcntl(file_fd, F_DUPFD_CLOEXEC, 0));
    if (!file.valid()) return false;
  }
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr) slot->out = NewOutputQueue();
  slot->out->AppendFile(std::move(file), offset, length);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  return true;
}

}  // namespace baton::internal
