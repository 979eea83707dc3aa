// Internal: the output side of serving a claimed connection: the handler's
// Write / SendFile, output flushed and OnDrained, ShutdownWrite, and the
// early send of a Write claimed on a worker. Every function here runs with
// the caller holding the slot's claim.
#include "lib/internal/connection_output.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_tls.h"
#include "lib/internal/worker_context.h"
#include "lib/net/clock.h"
#include "lib/net/errno_status.h"
#include "lib/net/socket_options.h"

namespace baton::internal {
namespace {

// Rounds of encrypting a file's blocks and sending them one flush may take
// (each a few records, see EncryptQueuedPlaintext) before it waits for
// EPOLLOUT: about what one sendfile call moves on a plain connection.
constexpr int kMaxTlsFileRounds = 16;

}  // namespace

ConnectionOutput::ConnectionOutput(const ReactorOptions& options,
                                   CounterSet& counters,
                                   ConnectionLifetime* lifetime)
    : high_water_(options.output_high_water),
      track_activity_(ConnectionLifetime::TracksActivity(options)),
      counters_(counters),
      lifetime_(lifetime) {}

bool ConnectionOutput::MaybeShutdownWrite(Slot* slot) {
  OwnerState& owner = slot->owner;
  if (!owner.open() || slot->out_bytes.load(std::memory_order_acquire) > 0) {
    return true;  // closing anyway, or output still to send
  }
  if (const TlsState* tls = TlsOf(owner); tls != nullptr && tls->upgrading) {
    return true;  // after StartTls: its handshake, then close_notify
  }
  owner.shutdown_due = false;
  owner.write_shut = true;
  ::shutdown(owner.fd, SHUT_WR);
  if (owner.peer_closed) {
    lifetime_->Teardown(slot, absl::OkStatus());  // both directions done
    return false;
  }
  return true;
}

bool ConnectionOutput::SendQueued(Slot* slot, OutputQueue::FlushResult* result,
                                  int* error) {
  // A TLS connection's queued plaintext is encrypted first (a foreign
  // writer could not; a file is read as the queue drains): SendQueuedNow
  // sends it at once too.
  TlsState* tls = TlsOf(slot->owner);
  size_t sent = 0;
  bool queued = false;
  for (int round = 0;; ++round) {
    if (tls != nullptr) {
      if (const int file_error = EncryptQueuedPlaintext(slot, *tls)) {
        *result = OutputQueue::FlushResult::kError;
        *error = file_error;
        queued = true;
        break;
      }
    }
    MutexLock lock(&slot->out_mu);
    if (slot->out == nullptr || slot->out->empty()) break;
    queued = true;
    *result = slot->out->Flush(slot->owner.fd, &sent, error);
    if (*result == OutputQueue::FlushResult::kDrained) {
      RecycleOutputQueue(&slot->out);  // an idle connection keeps none
    }
    // With plaintext a foreign Write queued since (the owner looks again).
    slot->out_bytes.store(QueuedBytes(slot), std::memory_order_relaxed);
    // A file still being read goes on while the socket takes it, for a
    // bounded number of blocks per round (as one sendfile call is).
    if (*result != OutputQueue::FlushResult::kDrained ||
        slot->tls_plain == nullptr) {
      break;
    }
    if (round + 1 == kMaxTlsFileRounds) {
      *result = OutputQueue::FlushResult::kBlocked;  // EPOLLOUT: more soon
      break;
    }
  }
  if (!queued) return false;
  if (sent > 0) {
    Count(&WorkerCounters::bytes_written, sent);
    if (track_activity_) {
      slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                   std::memory_order_relaxed);
    }
  }
  return true;
}

bool ConnectionOutput::FlushOutput(Slot* slot) {
  OwnerState& owner = slot->owner;
  if (owner.write_shut && slot->out_bytes.load(std::memory_order_acquire) > 0) {
    // Reactor::Write after ShutdownWrite: nowhere to send it.
    MutexLock lock(&slot->out_mu);
    RecycleOutputQueue(&slot->out);
    slot->tls_plain.reset();
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
      lifetime_->Teardown(slot, net::ErrnoStatus("send", error));
      return false;
    }
    if (result == OutputQueue::FlushResult::kBlocked) {
      owner.drained_due = true;
      return true;
    }
  }
  // Drained after a backlog.
  owner.drained_due = false;
  MaybeResumeAfterBacklog(slot);
  if (owner.open()) {
    return lifetime_->Upcall(
        slot, [](ConnectionHandler& h, Connection& c) { h.OnDrained(c); });
  }
  return true;
}

void ConnectionOutput::SendQueuedNow(Slot* slot) {
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
  Count(&WorkerCounters::sends_at_write);
  if (result == OutputQueue::FlushResult::kError) {
    owner.write_error = error;
    return;
  }
  owner.drained_due = true;
}

void ConnectionOutput::OwnerWrite(Slot* slot, absl::string_view data,
                                  bool more) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  if (data.empty() || !owner.open() || owner.write_error != 0 ||
      owner.shutdown_due || owner.write_shut) {
    return;
  }
  if (TlsState* tls = TlsOf(owner)) {
    TlsWrite(slot, *tls, data);
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
      Count(&WorkerCounters::bytes_written, static_cast<uint64_t>(n));
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

bool ConnectionOutput::OwnerSendFile(Slot* slot, int file_fd, int64_t offset,
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
  if (TlsOf(slot->owner) != nullptr) {
    TlsSendFile(slot, std::move(file), offset, length);
    return true;
  }
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr) slot->out = NewOutputQueue();
  slot->out->AppendFile(std::move(file), offset, length);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  return true;
}

}  // namespace baton::internal
