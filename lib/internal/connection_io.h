// Internal header: ConnectionIo, the owner's loop over a claimed
// connection (Serve): its requests, a round of input and output, then
// whether it goes back on the ready queue still claimed (a yield, a
// re-read), is parked, or is re-armed (the one epoll_ctl per
// claim) and released. Every function here runs with the caller holding
// the slot's claim.
//
// What happens after a round is decided by round_policy.h (Decide), a pure
// function; Serve gathers its facts and applies its plan.
//
// Owns: nothing (a connection's state is its OwnerState).
// Uses: ReactorOptions, Poller (re-arming), Scheduler (queueing, parking),
//   CounterSet.
// Calls: ConnectionInput::ReadInput, ConnectionOutput (FlushOutput,
//   MaybeShutdownWrite), Connector::ServeConnecting (kConnecting),
//   ConnectionTimers::RunDueTimers (kTimerDue), ConnectionLifetime
//   (Teardown, SetPhase, CloseOrLinger, OwnerShutdownWrite).
#ifndef BATON_INTERNAL_CONNECTION_IO_H_
#define BATON_INTERNAL_CONNECTION_IO_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/poller.h"
#include "lib/internal/scheduler.h"

namespace baton::internal {

class ConnectionInput;
class ConnectionLifetime;
class ConnectionOutput;
class ConnectionTimers;
class Connector;

class ConnectionIo {
 public:
  // Siblings, which may not be constructed yet.
  struct Parts {
    ConnectionLifetime* lifetime;
    ConnectionInput* input;
    ConnectionOutput* output;
    Connector* connector;
    ConnectionTimers* connection_timers;
  };
  ConnectionIo(const ReactorOptions& options, Poller& poller,
               Scheduler& scheduler, CounterSet& counters, Parts parts);
  ConnectionIo(const ConnectionIo&) = delete;
  ConnectionIo& operator=(const ConnectionIo&) = delete;

  // The owner's loop: serves the connection as work of `kind` brought it
  // (WorkKind) and its pending requests, then does what Decide
  // (round_policy.h) says: queues it, still claimed, to read on after other
  // work (a yield or a re-read), parks it, or re-arms and releases it.
  // `revents`: kEvent's epoll events. `reread_round`: kReread's round.
  void Serve(Slot* slot, WorkKind kind, uint32_t revents = 0,
             int reread_round = 0);
  // An epoll event, or the first look at a new connection.
  void Serve(Slot* slot, uint32_t revents) {
    Serve(slot, WorkKind::kEvent, revents);
  }

 private:
  // Serves one round; returns false if the connection was torn down. Adds
  // the bytes read to `*bytes_read`.
  bool ServeRound(Slot* slot, uint32_t revents, size_t* bytes_read);
  // A step of a TLS handshake (or STARTTLS upgrade) that a thread other
  // than a handshake thread passes to the handshake threads
  // (ReactorOptions::tls_handshake_threads) instead of running it.
  bool DefersHandshake(OwnerState& owner) const;
  // Arms the connection's socket with the interest it needs now (one
  // epoll_ctl). Returns false if that failed and tore the connection down.
  bool Rearm(Slot* slot);

  bool InReactorThread() const { return counters_.InWorkerThread(); }
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  const ReactorOptions& options_;
  // Consecutive re-reads a connection may have before it is re-armed
  // (reread_rounds, with -1 meaning no bound).
  const int max_reread_rounds_ = options_.reread_rounds < 0
                                     ? std::numeric_limits<int>::max()
                                     : options_.reread_rounds;
  const bool park_relays_ = options_.park_relays && options_.reread_rounds != 0;
  Poller& poller_;
  Scheduler& scheduler_;
  CounterSet& counters_;
  ConnectionLifetime* const lifetime_;
  ConnectionInput* const input_;
  ConnectionOutput* const output_;
  Connector* const connector_;
  ConnectionTimers* const connection_timers_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_IO_H_
