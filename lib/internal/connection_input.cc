// Internal: the input side of serving a claimed connection: reads
// delivered to OnData, retained input, the peer's EOF. Every function here
// runs with the caller holding the slot's claim.
#include "lib/internal/connection_input.h"

#include <glog/logging.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_tls.h"
#include "lib/internal/worker_context.h"
#include "lib/net/clock.h"
#include "lib/net/errno_status.h"

namespace baton::internal {
namespace {

// How many reads one readiness event may take before the connection goes
// back to epoll, so one fast sender cannot starve the others on its thread.
constexpr int kMaxReadsPerEvent = 16;

}  // namespace

ConnectionInput::ConnectionInput(const ReactorOptions& options,
                                 const Scheduler& scheduler,
                                 CounterSet& counters,
                                 ConnectionLifetime* lifetime)
    : options_(options),
      track_activity_(ConnectionLifetime::TracksActivity(options)),
      scheduler_(scheduler),
      counters_(counters),
      lifetime_(lifetime) {}

bool ConnectionInput::ReadInput(Slot* slot, uint32_t revents,
                                size_t* bytes_read) {
  OwnerState& owner = slot->owner;
  if (TlsState* tls = TlsOf(owner)) {
    return ReadTlsInput(slot, *tls, revents, bytes_read);
  }
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
    // Room made behind retained input for a read that brought nothing (a
    // re-read that missed) is given back: a waiting connection holds only
    // what it keeps.
    if (n <= 0 && held != nullptr) held->ShrinkToFit();
    if (n > 0) {
      if (held != nullptr) held->Commit(static_cast<size_t>(n));
      *bytes_read += static_cast<size_t>(n);
      Count(&WorkerCounters::bytes_read, static_cast<uint64_t>(n));
      if (track_activity_) {
        slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
      if (owner.phase != ConnectionPhase::kLingering) {
        const absl::string_view data =
            held == nullptr ? absl::string_view(buffer, static_cast<size_t>(n))
                            : absl::string_view(held->data(), held->size());
        if (!Deliver(slot, data, held != nullptr)) return false;
        // Upgraded by StartTls: what follows is the engine's to read.
        if (!owner.open() || owner.user_paused || owner.write_error != 0 ||
            TlsOf(owner) != nullptr) {
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
      if (scheduler_.has_queued_work() && counters_.InWorkerThread()) {
        owner.input_left = true;
        break;
      }
      continue;
    }
    if (n == 0) {
      owner.peer_closed = true;
      if (owner.phase == ConnectionPhase::kLingering) {
        lifetime_->Teardown(slot, absl::OkStatus());
        return false;
      }
      if (!lifetime_->Upcall(slot, [](ConnectionHandler& h, Connection& c) {
            h.OnPeerClosed(c);
          })) {
        return false;
      }
      // Both directions done (ShutdownWrite earlier): close.
      if (owner.write_shut && owner.open()) {
        lifetime_->SetPhase(slot, ConnectionPhase::kClosing);
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    lifetime_->Teardown(slot, net::ErrnoStatus("read", errno));
    return false;
  }
  return true;
}

bool ConnectionInput::Deliver(Slot* slot, absl::string_view data,
                              bool in_extras) {
  OwnerState& owner = slot->owner;
  owner.delivered = data.size();
  owner.retain = 0;
  if (!lifetime_->Upcall(slot, [data](ConnectionHandler& h, Connection& c) {
        h.OnData(c, data);
      })) {
    return false;  // torn down: the slot is no longer ours to look at
  }
  const size_t keep = owner.retain;
  owner.delivered = 0;
  owner.retain = 0;
  if (TlsState* tls = TlsOf(owner); tls != nullptr && tls->feed_after_ondata) {
    // StartTls in this call: the bytes the handler retained at the call
    // are the engine's, as is all input from now on.
    tls->feed_after_ondata = false;
    const size_t n = std::min(tls->upgrade_input, data.size());
    if (n > 0) {
      tls->session->Feed(data.substr(data.size() - n));
      tls->plaintext_left = true;  // the socket will not signal for them
    }
    if (in_extras) owner.extras->input.Release();
    return true;
  }
  if (keep == 0) {
    // Everything consumed: the common case copies nothing. The block is
    // given back, so that idle connections hold no input memory.
    if (in_extras) owner.extras->input.Release();
    return true;
  }
  if (keep > options_.max_retained_input) {
    lifetime_->Teardown(slot,
                        absl::ResourceExhaustedError(absl::StrCat(
                            "retained input limit: ", keep,
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
    Count(&WorkerCounters::retained_bytes, keep);
  }
  return true;
}

}  // namespace baton::internal
