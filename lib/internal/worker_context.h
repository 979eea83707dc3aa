// Internal header: WorkerContext, what a worker thread knows about itself
// (EventLoop::WorkerMain sets it up for the thread's lifetime), and the
// per-thread spare output queues kept in it.
#ifndef BATON_INTERNAL_WORKER_CONTEXT_H_
#define BATON_INTERNAL_WORKER_CONTEXT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lib/internal/output_queue.h"

namespace baton::internal {

class CounterSet;

struct WorkerContext {
  // The reactor's counters; also tells its workers from other threads
  // (CounterSet::InWorkerThread).
  const CounterSet* counters = nullptr;
  int index = 0;
  // A TLS handshake thread (ReactorOptions::tls_handshake_threads), not a
  // worker: it serves deferred handshake steps only.
  bool handshake_thread = false;
  std::unique_ptr<char[]> read_buffer;
  size_t read_buffer_size = 0;
  // Drained output queues kept for reuse (NewOutputQueue).
  std::vector<std::unique_ptr<OutputQueue>> spare_queues;
  // Reactor::Write calls made on this thread: Serve compares it around a
  // round to see that a handler relayed input to another connection.
  uint64_t writes = 0;
};

// The calling thread's context, or nullptr on a non-worker thread.
WorkerContext* CurrentWorker();
// Installs `context` (nullptr: none) as the calling thread's.
void SetCurrentWorker(WorkerContext* context);

// An empty output queue: one a drained connection gave back on this worker
// thread, or a new one. Relaying a message (Reactor::Write, a proxy) then
// allocates nothing.
std::unique_ptr<OutputQueue> NewOutputQueue();
// Empties `*queue` and keeps it for this worker thread's next
// NewOutputQueue (a few are kept; others, and any off a worker, are freed).
void RecycleOutputQueue(std::unique_ptr<OutputQueue>* queue);

}  // namespace baton::internal

#endif  // BATON_INTERNAL_WORKER_CONTEXT_H_
