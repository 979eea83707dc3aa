// Internal header: ConnectionTimers, per-connection timers
// (Connection::RunAfter) and kTimerDue, the request the timer queue raises
// for them and for connect deadlines. A timer queue callback never touches
// owner state: it raises kTimerDue on the connection's id (stale after
// teardown, so a late one is a no-op) through ForeignRequests::Request, as
// a foreign Close would, and the owner, holding the claim, runs whatever is
// due.
//
// Owns: nothing (a connection's timers live in its OwnerExtras).
// Uses: TimerQueue, CounterSet.
// Threads: the caller holds the connection's claim.
// Calls: ForeignRequests::Request (from timer queue callbacks),
//   ConnectionLifetime::Upcall (running a due timer).
#ifndef BATON_INTERNAL_CONNECTION_TIMERS_H_
#define BATON_INTERNAL_CONNECTION_TIMERS_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "baton/connection.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/timer_queue.h"

namespace baton::internal {

class ConnectionLifetime;
class ForeignRequests;

class ConnectionTimers {
 public:
  // The sibling pointers may name components not constructed yet.
  ConnectionTimers(TimerQueue& timers, CounterSet& counters,
                   ForeignRequests* requests, ConnectionLifetime* lifetime);
  ConnectionTimers(const ConnectionTimers&) = delete;
  ConnectionTimers& operator=(const ConnectionTimers&) = delete;

  // baton::Connection (the caller holds the claim on `slot`).
  uint64_t OwnerRunAfter(Slot* slot, absl::Duration delay,
                         std::function<void(Connection&)> fn);
  bool OwnerCancelTimer(Slot* slot, uint64_t id);

  // Runs the connection's due timers; false if one tore it down.
  bool RunDueTimers(Slot* slot);
  // Teardown: cancels every timer queue entry the connection holds.
  void CancelConnectionTimers(Slot* slot);
  // Arms a one-shot timer queue entry that raises kTimerDue on `slot`
  // (through Request, so that entries falling due together are served by
  // as many threads as are free).
  uint64_t AddTimerDue(Slot* slot, int64_t deadline_ns);

 private:
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  TimerQueue& timers_;
  CounterSet& counters_;
  ForeignRequests* const requests_;
  ConnectionLifetime* const lifetime_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_TIMERS_H_
