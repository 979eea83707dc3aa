// Internal header: ForeignRequests, operations on a connection from a
// thread that does not hold its claim (Reactor::Write / Close / Abort /
// ResumeReading / ShutdownWrite, the idle sweep, Drain, timers). They never
// touch owner state: they queue bytes under the slot's out_mu or set a
// request flag, then make sure the owner, or a reactor thread that becomes
// the owner, looks at the connection.
//
// Owns: nothing.
// Uses: ConnectionTable, Scheduler, CounterSet (is this a worker thread).
// Threads: every function is safe from any thread.
// Calls: ConnectionOutput::SendQueuedNow (a Write claimed on a worker),
//   ConnectionIo::Serve (posted, from other threads), EventLoop::Post.
#ifndef BATON_INTERNAL_FOREIGN_REQUESTS_H_
#define BATON_INTERNAL_FOREIGN_REQUESTS_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "baton/connection.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/scheduler.h"

namespace baton::internal {

class ConnectionIo;
class ConnectionOutput;
class EventLoop;

class ForeignRequests {
 public:
  // The sibling pointers may name components not constructed yet.
  ForeignRequests(ConnectionTable& table, Scheduler& scheduler,
                  const CounterSet& counters, EventLoop* loop, ConnectionIo* io,
                  ConnectionOutput* output);
  ForeignRequests(const ForeignRequests&) = delete;
  ForeignRequests& operator=(const ForeignRequests&) = delete;

  // Reactor::Write: queues `data` for `id`; false if `id` is stale or
  // closing.
  bool Write(ConnectionId id, absl::string_view data);
  // Asks the owner of `id` to serve `request` (kCloseRequested, ...;
  // kOutputQueued for "look at the output queue"): claims the connection for
  // the calling thread and hands the claim to a reactor thread, or, if another
  // thread owns it, leaves the request for that thread. False if `id` is stale.
  bool Request(ConnectionId id, uint32_t request);
  // Bytes queued for `id`, 0 if stale (lock-free snapshot).
  size_t PendingOutput(ConnectionId id) const;

 private:
  ConnectionTable& table_;
  Scheduler& scheduler_;
  const CounterSet& counters_;
  EventLoop* const loop_;
  ConnectionIo* const io_;
  ConnectionOutput* const output_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_FOREIGN_REQUESTS_H_
