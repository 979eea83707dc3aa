// Internal header: ConnectionOutput, the output side of serving a claimed
// connection: the handler's Write / SendFile, flushing the output queue,
// OnDrained, ShutdownWrite once output is sent, and the early send of a
// Write claimed on a worker (SendQueuedNow). Every function here runs with
// the caller holding the slot's claim.
//
// Owns: nothing (the queue is the slot's, under Slot::out_mu).
// Uses: ReactorOptions (read at construction), CounterSet.
// Calls: ConnectionLifetime (Upcall for OnDrained, Teardown).
#ifndef BATON_INTERNAL_CONNECTION_OUTPUT_H_
#define BATON_INTERNAL_CONNECTION_OUTPUT_H_

#include <atomic>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/scoped_fd.h"

namespace baton::internal {

class ConnectionLifetime;
struct TlsState;

class ConnectionOutput {
 public:
  // `lifetime` may not be constructed yet.
  ConnectionOutput(const ReactorOptions& options, CounterSet& counters,
                   ConnectionLifetime* lifetime);
  ConnectionOutput(const ConnectionOutput&) = delete;
  ConnectionOutput& operator=(const ConnectionOutput&) = delete;

  // baton::Connection. `more`: send with MSG_MORE (see
  // WriteHint::kMoreFollows).
  void OwnerWrite(Slot* slot, absl::string_view data, bool more);
  // `transfer`: file_fd becomes the connection's (see FileOwnership).
  bool OwnerSendFile(Slot* slot, int file_fd, int64_t offset, int64_t length,
                     bool transfer);

  // Sends what is queued, delivers OnDrained when a backlog drained; false
  // if torn down.
  bool FlushOutput(Slot* slot);
  // Sends what is queued for a connection claimed by Request on a reactor
  // thread, before its ready item runs; no upcall (see the definition).
  void SendQueuedNow(Slot* slot);
  // ShutdownWrite once output is sent; false if that closed the connection.
  bool MaybeShutdownWrite(Slot* slot);
  // Reading resumes once the backlog has drained to half the high-water
  // mark.
  void MaybeResumeAfterBacklog(Slot* slot) {
    if (slot->owner.hwm_paused &&
        slot->out_bytes.load(std::memory_order_acquire) <= high_water_ / 2) {
      slot->owner.hwm_paused = false;
    }
  }

 private:
  // OwnerWrite / OwnerSendFile on a TLS connection
  // (connection_tls_output.cc): encrypted into the output queue, or queued
  // as plaintext behind a file being sent (Slot::tls_plain).
  void TlsWrite(Slot* slot, TlsState& tls, absl::string_view data);
  void TlsSendFile(Slot* slot, ScopedFd file, int64_t offset, int64_t length);
  // Sends the queued output (under out_mu) and counts what was sent; a
  // drained queue is recycled. False if nothing was queued.
  bool SendQueued(Slot* slot, OutputQueue::FlushResult* result, int* error);
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  const size_t high_water_;  // ReactorOptions::output_high_water
  // Reads and sends stamp last_activity_ms (ConnectionLifetime::
  // TracksActivity).
  const bool track_activity_;
  CounterSet& counters_;
  ConnectionLifetime* const lifetime_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_OUTPUT_H_
