// Internal header: ReactorCore, the machinery behind baton::Reactor and
// baton::Connection. Part of //lib:baton's sources (it needs the public
// types), not of //lib:internal.
//
// ReactorCore is the composition root: it owns the shared pieces and one
// object per job, constructs them in dependency order, wires them, and
// implements Start / Stop / Drain / Wait by delegating. Each component's
// header says what it owns, what it uses and what it calls:
//   EventLoop           the worker loop (leader/followers over the
//                       Scheduler's ready queue), dispatch of every epoll
//                       event, posted tasks, timers, the stop flag
//   Acceptor            Listen, accepting, StopAccepting, Adopt
//   Connector           Connect: outbound connections (kConnecting),
//                       host names looked up through the Resolver
//   ConnectionIo        the owner's loop over a claimed connection: rounds,
//                       yields, re-reads, parking, re-arming
//   ConnectionInput     reads delivered to OnData, retained input
//   ConnectionOutput    the handler's Write / SendFile, flushing, OnDrained
//   ConnectionLifetime  opening, closing, lingering, teardown, the idle
//                       sweep: every ConnectionPhase transition; Drain flag
//   ConnectionTimers    per-connection timers (Connection::RunAfter)
//   ForeignRequests     Write / Close / Abort ... from any thread
// Shared pieces: ReactorOptions, CounterSet, Poller, TimerQueue, Resolver
// (host names for Connect, on the Poller and TimerQueue; a finished lookup
// calls ForeignRequests::Request(id, kTimerDue)), ConnectionTable,
// Scheduler, AdoptGate, TlsOptionsCache (TLS contexts by options object,
// for Connection::StartTls and the Connector); each component gets only
// those it uses. Sibling components are reached through plain pointers (no
// virtual calls, no std::function on the per-event path).
#ifndef BATON_INTERNAL_REACTOR_CORE_H_
#define BATON_INTERNAL_REACTOR_CORE_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor.h"
#include "lib/internal/acceptor.h"
#include "lib/internal/adopt_gate.h"
#include "lib/internal/connection_input.h"
#include "lib/internal/connection_io.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_output.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/connector.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/event_loop.h"
#include "lib/internal/foreign_requests.h"
#include "lib/internal/mutex.h"
#include "lib/internal/poller.h"
#include "lib/internal/resolver.h"
#include "lib/internal/scheduler.h"
#include "lib/internal/timer_queue.h"
#include "lib/internal/tls_options_cache.h"

namespace baton::internal {

class ReactorCore {
 public:
  explicit ReactorCore(const ReactorOptions& options);
  ~ReactorCore();

  // --- baton::Reactor ---
  absl::StatusOr<int> Listen(const ListenOptions& options,
                             HandlerFactory factory) {
    return acceptor_.Listen(options, std::move(factory));
  }
  absl::StatusOr<ConnectionId> Adopt(int fd, HandlerFactory factory) {
    return acceptor_.Adopt(fd, std::move(factory));
  }
  absl::StatusOr<ConnectionId> Connect(const ConnectOptions& options,
                                       HandlerFactory factory) {
    return connector_.Connect(options, std::move(factory));
  }
  absl::Status Start();
  void Stop();
  void Wait();
  bool stopping() const { return loop_.stopping(); }
  void Drain();
  void StopAccepting() {
    acceptor_.StopAccepting([] { return true; });
  }
  bool Post(std::function<void()> task) { return loop_.Post(std::move(task)); }
  // Reactor::RunAfter / RunEvery add kReactor timers (EventLoop::AddTimer).
  uint64_t AddTimer(int64_t delay_ns, int64_t period_ns,
                    std::function<void()> fn, TimerKind kind) {
    return loop_.AddTimer(delay_ns, period_ns, std::move(fn), kind);
  }
  // Reactor::CancelTimer: reaches kReactor timers only.
  bool CancelTimer(uint64_t id) {
    return timers_.Cancel(id, TimerKind::kReactor);
  }
  bool Write(ConnectionId id, absl::string_view data) {
    return requests_.Write(id, data);
  }
  bool Request(ConnectionId id, uint32_t request) {
    return requests_.Request(id, request);
  }
  size_t PendingOutput(ConnectionId id) const {
    return requests_.PendingOutput(id);
  }
  size_t connection_count() const { return table_.live(); }
  ReactorCounters Counters() const { return counters_.Total(); }
  std::vector<ReactorCounters> ThreadCounters() const {
    return counters_.PerWorker();
  }
  bool InReactorThread() const { return counters_.InWorkerThread(); }
  const ReactorOptions& options() const { return options_; }
  // The public object this core serves (for Connection::reactor()).
  void set_owner(Reactor* owner) { owner_ = owner; }
  Reactor* owner() const { return owner_; }

  // Tests: keeps every worker out of epoll_wait (the calling thread holds
  // the leader role) until ResumePollingForTest, so that events pile up and
  // the next epoll_wait returns them together.
  void HoldPollingForTest() {
    scheduler_.ReserveLeaderRoleForTest();
    Post([] {});  // brings the current leader out of epoll_wait
    scheduler_.AwaitVacantLeaderRoleForTest();
  }
  void ResumePollingForTest() { scheduler_.ReleaseLeaderRoleForTest(); }

  // Tests: entries waiting in the timer queue (every kind; not those of a
  // batch being run).
  size_t PendingTimersForTest() const { return timers_.size(); }

  // Tests: host name lookups started and not yet taken or forgotten.
  size_t PendingLookupsForTest() const { return resolver_.pending(); }
  // Tests: stops the resolver cache's clock; moves it forward by `ns`.
  void FreezeDnsCacheClockForTest() { resolver_.FreezeCacheClockForTest(); }
  void AdvanceDnsCacheClockForTest(int64_t ns) {
    resolver_.AdvanceCacheClockForTest(ns);
  }

  // Dispatches a synthetic epoll event as if epoll_wait had returned it.
  // Tests only; must run on a reactor thread (e.g. inside Post).
  void InjectEventForTest(uint64_t data, uint32_t events) {
    loop_.Dispatch(data, events);
  }

  // --- baton::Connection (the caller holds the claim on `slot`) ---
  void OwnerWrite(Slot* slot, absl::string_view data, bool more) {
    output_.OwnerWrite(slot, data, more);
  }
  bool OwnerSendFile(Slot* slot, int file_fd, int64_t offset, int64_t length,
                     bool transfer) {
    return output_.OwnerSendFile(slot, file_fd, offset, length, transfer);
  }
  void OwnerClose(Slot* slot) { lifetime_.OwnerClose(slot); }
  void OwnerAbort(Slot* slot) { lifetime_.OwnerAbort(slot); }
  void OwnerShutdownWrite(Slot* slot) { lifetime_.OwnerShutdownWrite(slot); }
  uint64_t OwnerRunAfter(Slot* slot, absl::Duration delay,
                         std::function<void(Connection&)> fn) {
    return connection_timers_.OwnerRunAfter(slot, delay, std::move(fn));
  }
  bool OwnerCancelTimer(Slot* slot, uint64_t id) {
    return connection_timers_.OwnerCancelTimer(slot, id);
  }
  // Connection::StartTls: the connection is checked before a context is
  // built (or found) for `options`.
  template <typename Options>
  absl::Status OwnerStartTls(Slot* slot,
                             const std::shared_ptr<const Options>& options) {
    if (options == nullptr) {
      return absl::InvalidArgumentError("StartTls: no TLS options");
    }
    if (absl::Status ready = lifetime_.CanUpgradeToTls(slot); !ready.ok()) {
      return ready;
    }
    absl::StatusOr<TlsOptionsCache::Context> context =
        tls_contexts_.Get(options);
    if (!context.ok()) return context.status();
    return lifetime_.UpgradeToTls(slot, *context);
  }

 private:
  const ReactorOptions options_;
  Reactor* owner_ = nullptr;
  const int num_workers_;

  // Shared pieces.
  CounterSet counters_;
  Poller poller_;
  TimerQueue timers_;
  // Host names for Connect. Outlives table_ (a connection being torn down
  // forgets its lookup) and is outlived by poller_ and timers_.
  Resolver resolver_;
  ConnectionTable table_;
  Scheduler scheduler_;
  AdoptGate adopt_gate_;
  // TLS contexts, one per options object: Connection::StartTls's (here)
  // and ConnectOptions::tls's (the Connector's).
  TlsOptionsCache tls_contexts_;

  // The components, in construction order. A component is given pointers
  // to siblings declared after it (cycles: I/O tears down through the
  // lifetime, the lifetime serves a new connection through I/O); it uses
  // them only once the workers run.
  EventLoop loop_;
  ForeignRequests requests_;
  ConnectionTimers connection_timers_;
  ConnectionLifetime lifetime_;
  ConnectionInput input_;
  ConnectionOutput output_;
  Connector connector_;
  ConnectionIo io_;
  Acceptor acceptor_;

  Mutex lifecycle_mu_;
  bool started_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  bool joined_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(lifecycle_mu_);
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_REACTOR_CORE_H_
