// Internal: operations on a connection from a thread that does not hold its
// claim (Reactor::Write / Close / Abort, the idle sweep, Drain, timers).
// They never touch owner state: they queue bytes under the slot's out_mu or
// set a request flag, then make sure the owner, or a reactor thread that
// becomes the owner, looks at the connection.
#include "lib/internal/foreign_requests.h"

#include <memory>
#include <string>

#include "lib/internal/connection_io.h"
#include "lib/internal/connection_output.h"
#include "lib/internal/event_loop.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/worker_context.h"

namespace baton::internal {

ForeignRequests::ForeignRequests(ConnectionTable& table, Scheduler& scheduler,
                                 const CounterSet& counters, EventLoop* loop,
                                 ConnectionIo* io, ConnectionOutput* output)
    : table_(table),
      scheduler_(scheduler),
      counters_(counters),
      loop_(loop),
      io_(io),
      output_(output) {}

bool ForeignRequests::Request(ConnectionId id, uint32_t request) {
  Slot* slot = table_.Lookup(IndexOfId(id.value));
  if (slot == nullptr) return false;
  switch (ConnectionTable::TryClaim(slot, GenerationOfId(id.value), request)) {
    case ClaimResult::kStale:
      return false;
    case ClaimResult::kBusy:
      return true;  // the owner sees kPending and serves it
    case ClaimResult::kClaimed:
      // We own it but are not the place to run its handler: hand the claim
      // to a reactor thread (a Write's bytes are sent first, on a reactor
      // thread: SendQueuedNow). From a reactor thread (a handler writing to
      // another connection, a timer) it goes on the ready queue, which this
      // thread itself drains once its callback returns: no eventfd write
      // and epoll round trip per cross-connection write (a proxy's every
      // message). From elsewhere, a posted task. If the reactor is
      // stopping, the connection is closed after the join instead.
      if (counters_.InWorkerThread()) {
        if (request == kOutputQueued)
          output_->SendQueuedNow(slot);  // send it now
        // Serve requests and output, no read.
        scheduler_.PushClaimed(slot, WorkKind::kRequest);
      } else {
        loop_->Post([this, slot] { io_->Serve(slot, WorkKind::kRequest); });
      }
      return true;
  }
  return false;
}

size_t ForeignRequests::PendingOutput(ConnectionId id) const {
  const Slot* slot = table_.Lookup(IndexOfId(id.value));
  if (slot == nullptr) return 0;
  const uint64_t state = slot->state.load(std::memory_order_acquire);
  if (GenerationOf(state) != GenerationOfId(id.value) ||
      !(FlagsOf(state) & kLive)) {
    return 0;
  }
  return slot->out_bytes.load(std::memory_order_seq_cst);
}

bool ForeignRequests::Write(ConnectionId id, absl::string_view data) {
  if (WorkerContext* worker = CurrentWorker(); worker != nullptr) {
    ++worker->writes;  // Serve: did this handler relay what it read?
  }
  Slot* slot = table_.Lookup(IndexOfId(id.value));
  if (slot == nullptr) return false;
  {
    MutexLock lock(&slot->out_mu);
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    if (GenerationOf(state) != GenerationOfId(id.value) ||
        (FlagsOf(state) & (kLive | kOutputClosed)) != kLive) {
      // Gone, or closing (its queue must drain, not grow).
      return false;
    }
    if (FlagsOf(state) & kTlsOutput) {
      // Only the owner holds the session: it encrypts this plaintext
      // before anything it writes itself (EncryptQueuedPlaintext).
      if (slot->tls_plain == nullptr) {
        slot->tls_plain = std::make_unique<OutputQueue>();
      }
      slot->tls_plain->Append(data);
    } else {
      if (slot->out == nullptr) slot->out = NewOutputQueue();
      slot->out->Append(data);
    }
    slot->out_bytes.store(QueuedBytes(slot), std::memory_order_release);
  }
  Request(id, kOutputQueued);
  return true;
}

}  // namespace baton::internal
