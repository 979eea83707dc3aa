// Internal header: Connector, outbound connections (Reactor::Connect). A
// connecting connection is an ordinary slot in ConnectionPhase::kConnecting,
// claimed and served like any other: its socket is armed for EPOLLOUT only
// (still EPOLLONESHOT, re-armed by Serve's one Rearm), completion is read
// with SO_ERROR, and its deadline and back-off are timer queue entries that
// raise kTimerDue on its id, never touch owner state themselves. A host
// name is looked up first (connector_lookup.cc), without a socket, unless
// the Resolver has its answer cached; the result raises kTimerDue too, and
// the attempts try every address in order.
//
// Owns: nothing; a connect's state, its pending lookup included, lives in
//   the connection's OwnerExtras.
// Uses: ConnectionTable, TimerQueue, CounterSet, AdoptGate, Resolver
//   (Cached, Start, and Take / Forget through the connection's
//   PendingLookup), TlsOptionsCache (ConnectOptions::tls's contexts, shared
//   with StartTls).
// Threads: Connect is safe from any thread; the rest runs on a worker
//   holding the connection's claim.
// Calls: EventLoop (stopping, Post), ConnectionLifetime (SetPhase,
//   OpenHandler, Teardown, draining), ConnectionTimers::AddTimerDue,
//   ConnectionIo::Serve (the first look at a new attempt).
#ifndef BATON_INTERNAL_CONNECTOR_H_
#define BATON_INTERNAL_CONNECTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "lib/internal/adopt_gate.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/resolver.h"
#include "lib/internal/timer_queue.h"
#include "lib/internal/tls_options_cache.h"

namespace baton::internal {

class ConnectionIo;
class ConnectionLifetime;
class ConnectionTimers;
class EventLoop;

class Connector {
 public:
  // The sibling pointers may name components not constructed yet.
  Connector(ConnectionTable& table, TimerQueue& timers, CounterSet& counters,
            AdoptGate& adopt_gate, Resolver& resolver,
            TlsOptionsCache& tls_contexts, EventLoop* loop,
            ConnectionLifetime* lifetime, ConnectionTimers* connection_timers,
            ConnectionIo* io);
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Reactor::Connect.
  absl::StatusOr<ConnectionId> Connect(const ConnectOptions& options,
                                       HandlerFactory factory);

  // Serves a kConnecting connection (the caller holds the claim): requests,
  // the connect's completion, its deadline or the end of its back-off.
  // False: torn down.
  bool ServeConnecting(Slot* slot, uint32_t requests, uint32_t revents);

 private:
  // (The caller holds the claim; false: torn down.)
  // On a reactor thread: makes the handler and starts the first attempt.
  void BeginConnect(Slot* slot, const HandlerFactory& factory);
  // Opens a socket and starts a non-blocking connect; sets `*connected` if
  // it completed at once.
  bool StartAttempt(Slot* slot, bool* connected);
  // The back-off or the lookup is over: starts the next attempt, or ends
  // the connect with CANCELLED after Stop or Drain. False: torn down.
  bool StartNextAttempt(Slot* slot);
  // Closes the attempt's socket; tries the name's next address, retries
  // after a back-off or tears down.
  bool AttemptFailed(Slot* slot, const absl::Status& reason);

  // connector_lookup.cc
  // Starts looking up the connection's host name (from BeginConnect).
  void StartLookup(Slot* slot);
  // Serves a connection whose host name is being looked up: its result or
  // deadline (kTimerDue) starts the first attempt or tears it down.
  bool ServeLookup(Slot* slot, uint32_t requests);

  // What the bodies call on their siblings (EventLoop, ConnectionLifetime,
  // ConnectionTimers, ConnectionIo), by the names they have always used.
  bool stopping() const;
  bool draining() const;
  bool Post(std::function<void()> task);
  void Teardown(Slot* slot, const absl::Status& reason);
  void SetPhase(Slot* slot, ConnectionPhase to);
  bool OpenHandler(Slot* slot);
  uint64_t AddTimerDue(Slot* slot, int64_t deadline_ns);
  void Serve(Slot* slot, uint32_t revents);
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  ConnectionTable& table_;
  TimerQueue& timers_;
  CounterSet& counters_;
  AdoptGate& adopt_gate_;
  Resolver& resolver_;
  // ConnectOptions::tls's contexts, built once per options object.
  TlsOptionsCache& tls_contexts_;
  EventLoop* const loop_;
  ConnectionLifetime* const lifetime_;
  ConnectionTimers* const connection_timers_;
  ConnectionIo* const io_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTOR_H_
