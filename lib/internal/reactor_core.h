// Internal header: ReactorCore, the machinery behind baton::Reactor and
// baton::Connection. Part of //lib:baton's sources (it needs the public
// types), not of //lib:internal.
//
// Its definitions are split by job, one file each:
//   reactor_core.cc         setup, Start / Stop / Drain / Wait, counters
//   event_loop.cc           the worker loop (leader/followers over the
//                           Scheduler's ready queue), dispatch of every
//                           epoll event, tasks, timers
//   acceptor.cc             Listen, accepting, Adopt
//   connection_io.cc        serving a claimed connection: reads, writes,
//                           re-arming, re-reads
//   connection_lifetime.cc  opening, closing, lingering, teardown, the idle
//                           sweep: every ConnectionPhase transition
//   foreign_requests.cc     Write / Close / Abort from any thread
//   connector.cc            Connect: outbound connections (kConnecting)
//   connection_timers.cc    per-connection timers (Connection::RunAfter)
//                           and the requests timers raise
#ifndef BATON_INTERNAL_REACTOR_CORE_H_
#define BATON_INTERNAL_REACTOR_CORE_H_

#include <glog/logging.h>
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/mutex.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/poller.h"
#include "lib/internal/scheduler.h"
#include "lib/internal/scoped_fd.h"
#include "lib/internal/timer_queue.h"

namespace baton::internal {

// Counters of one worker, written only by that worker (relaxed load+store,
// no locked instruction on the hot path) and read by anyone.
struct alignas(64) WorkerCounters {
#define BATON_WORKER_COUNTER(name, what) std::atomic<uint64_t> name{0};
  BATON_REACTOR_COUNTERS(BATON_WORKER_COUNTER)
#undef BATON_WORKER_COUNTER

  ReactorCounters Snapshot() const;
};

// What a worker thread knows about itself (event_loop.cc sets it up).
struct WorkerContext {
  class ReactorCore* core = nullptr;
  int index = 0;
  std::unique_ptr<char[]> read_buffer;
  size_t read_buffer_size = 0;
  // Drained output queues kept for reuse (NewOutputQueue).
  std::vector<std::unique_ptr<OutputQueue>> spare_queues;
  // Reactor::Write calls made on this thread: Serve compares it around a
  // round to see that a handler relayed input to another connection.
  uint64_t writes = 0;
};

// An empty output queue: one a drained connection gave back on this worker
// thread, or a new one. Relaying a message (Reactor::Write, a proxy) then
// allocates nothing.
std::unique_ptr<OutputQueue> NewOutputQueue();
// Empties `*queue` and keeps it for this worker thread's next
// NewOutputQueue (a few are kept; others, and any off a worker, are freed).
void RecycleOutputQueue(std::unique_ptr<OutputQueue>* queue);

// The calling thread's context, or nullptr on a non-worker thread.
WorkerContext* CurrentWorker();

// Debug check at every entry point that needs the caller to hold `slot`'s
// claim (active in tests, compiled out with NDEBUG).
inline void AssertClaimed(const Slot* slot) {
  DCHECK(FlagsOf(slot->state.load(std::memory_order_relaxed)) & kClaimed)
      << "slot " << slot->index << " used without holding its claim";
}

class ReactorCore {
 public:
  explicit ReactorCore(const ReactorOptions& options);
  ~ReactorCore();

  // --- baton::Reactor ---
  absl::StatusOr<int> Listen(const ListenOptions& options,
                             HandlerFactory factory);
  absl::StatusOr<ConnectionId> Adopt(int fd, HandlerFactory factory);
  absl::StatusOr<ConnectionId> Connect(const ConnectOptions& options,
                                       HandlerFactory factory);
  absl::Status Start();
  void Stop();
  void Wait();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool draining() const {
    return draining_.load(std::memory_order_acquire) != 0;
  }
  void Drain();
  void StopAccepting();
  // Listeners are shut (StopAccepting, Drain or Stop): no accepts, no
  // Listen.
  bool accepting_stopped() const {
    return stopping() || accepting_stopped_.load(std::memory_order_acquire);
  }
  bool Post(std::function<void()> task);
  // A timer queue entry due `delay_ns` from now (net::DeadlineAfter: a
  // huge delay never falls due), then every `period_ns` if positive; 0 if
  // stopping. Reactor::RunAfter / RunEvery add kReactor timers, the
  // library its own kInternal ones.
  uint64_t AddTimer(int64_t delay_ns, int64_t period_ns,
                    std::function<void()> fn,
                    TimerKind kind = TimerKind::kInternal);
  // Reactor::CancelTimer: reaches kReactor timers only.
  bool CancelTimer(uint64_t id) {
    return timers_.Cancel(id, TimerKind::kReactor);
  }
  bool Write(ConnectionId id, absl::string_view data);
  // Asks the owner of `id` to serve `request` (kCloseRequested, ...;
  // kOutputQueued for "look at the output queue"): claims the connection for
  // the calling thread and hands the claim to a reactor thread, or, if another
  // thread owns it, leaves the request for that thread. False if `id` is stale.
  bool Request(ConnectionId id, uint32_t request);
  // Bytes queued for `id`, 0 if stale (lock-free snapshot).
  size_t PendingOutput(ConnectionId id) const;
  size_t connection_count() const { return table_.live(); }
  ReactorCounters Counters() const;
  std::vector<ReactorCounters> ThreadCounters() const;
  bool InReactorThread() const;
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

  // Dispatches a synthetic epoll event as if epoll_wait had returned it.
  // Tests only; must run on a reactor thread (e.g. inside Post).
  void InjectEventForTest(uint64_t data, uint32_t events) {
    epoll_event event = {};
    event.events = events;
    event.data.u64 = data;
    Dispatch(event);
  }

  // --- baton::Connection (the caller holds the claim on `slot`) ---
  // `more`: send with MSG_MORE (see WriteHint::kMoreFollows).
  void OwnerWrite(Slot* slot, absl::string_view data, bool more);
  // `transfer`: file_fd becomes the connection's (see FileOwnership).
  bool OwnerSendFile(Slot* slot, int file_fd, int64_t offset, int64_t length,
                     bool transfer);
  void OwnerClose(Slot* slot);
  void OwnerAbort(Slot* slot);
  void OwnerShutdownWrite(Slot* slot);
  // connection_timers.cc
  uint64_t OwnerRunAfter(Slot* slot, absl::Duration delay,
                         std::function<void(Connection&)> fn);
  bool OwnerCancelTimer(Slot* slot, uint64_t id);

 private:
  struct Listener {
    ScopedFd fd;
    HandlerFactory factory;
    uint64_t source = 0;
    // TCP_DEFER_ACCEPT: the first bytes are there at accept time; read them
    // then instead of waiting for an event.
    bool read_at_accept = false;
  };

  // event_loop.cc
  void WorkerMain(int index);
  // Runs one item from the ready queue: an event, or a claimed connection.
  void RunItem(const ReadyItem& item);
  void Dispatch(const epoll_event& event);
  void HandleInternal(uint64_t source);
  void RunTasks();

  // acceptor.cc
  void HandleListener(Listener* listener);
  // Accepts one waiting client with the reserved descriptor and closes it
  // (counted as rejected); used when accept4 runs out of descriptors.
  void ShedOneConnection(Listener* listener);

  // connection_lifetime.cc
  // Sets up a freshly allocated, claimed slot and serves it.
  // `accepted`: from one of our listeners, so TCP_NODELAY is inherited;
  // `readable`: input is known to be waiting (deferred accept).
  struct OpenMode {
    bool accepted = false;
    bool readable = false;
  };
  void OpenConnection(Slot* slot, int fd, const HandlerFactory& factory,
                      OpenMode mode);
  // Moves the lifetime on; the transition must be allowed
  // (ConnectionPhaseAllows).
  void SetPhase(Slot* slot, ConnectionPhase to);
  // kClosing with nothing left to send: closes, or lingers if unread input
  // would turn the close into a reset. Returns false if it closed.
  bool CloseOrLinger(Slot* slot);
  // kNew or kConnecting -> kOpen: OnOpen, then kClosing if draining.
  // Returns false if that tore the connection down.
  bool OpenHandler(Slot* slot);
  // The one teardown path: OnClose (unless the handler never opened), a
  // last non-blocking flush if `flush`, close(2), free the slot. Afterwards
  // the slot belongs to the next connection: do not touch it.
  void Teardown(Slot* slot, const absl::Status& reason, bool flush = false);
  // Runs one handler callback, then applies an Abort() made inside it.
  // Returns false if that tore the connection down.
  bool Upcall(Slot* slot,
              absl::FunctionRef<void(ConnectionHandler&, Connection&)> call);
  void SweepIdle();
  void CloseAllAfterJoin();

  // connector.cc (the caller holds the claim; false: torn down)
  // On a reactor thread: makes the handler and starts the first attempt.
  void BeginConnect(Slot* slot, const HandlerFactory& factory);
  // Opens a socket and starts a non-blocking connect; sets `*connected` if
  // it completed at once.
  bool StartAttempt(Slot* slot, bool* connected);
  // Serves a kConnecting connection: requests, the connect's completion,
  // its deadline or the end of its back-off.
  bool ServeConnecting(Slot* slot, uint32_t requests, uint32_t revents);
  // Closes the attempt's socket; retries after a back-off or tears down.
  bool AttemptFailed(Slot* slot, const absl::Status& reason);

  // connection_timers.cc
  // Runs the connection's due timers; false if one tore it down.
  bool RunDueTimers(Slot* slot);
  // Teardown: cancels every timer queue entry the connection holds.
  void CancelConnectionTimers(Slot* slot);
  // Arms a one-shot timer queue entry that raises kTimerDue on `slot`
  // (through Request, so that entries falling due together are served by
  // as many threads as are free).
  uint64_t AddTimerDue(Slot* slot, int64_t deadline_ns);

  // connection_io.cc
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
  // Serves one round; returns false if the connection was torn down. Adds
  // the bytes read to `*bytes_read`.
  bool ServeRound(Slot* slot, uint32_t revents, size_t* bytes_read);
  bool ReadInput(Slot* slot, uint32_t revents, size_t* bytes_read);
  bool FlushOutput(Slot* slot);
  // Sends the queued output (under out_mu) and counts what was sent; a
  // drained queue is recycled. False if nothing was queued.
  bool SendQueued(Slot* slot, OutputQueue::FlushResult* result, int* error);
  // Sends what is queued for a connection claimed by Request on a reactor
  // thread, before its ready item runs; no upcall (see the definition).
  void SendQueuedNow(Slot* slot);
  // Hands `data` to OnData and keeps what the handler retained; false if
  // torn down. `in_extras`: `data` is the retained buffer itself.
  bool Deliver(Slot* slot, absl::string_view data, bool in_extras);
  // ShutdownWrite once output is sent; false if that closed the connection.
  bool MaybeShutdownWrite(Slot* slot);
  // Arms the connection's socket with the interest it needs now (one
  // epoll_ctl). Returns false if that failed and tore the connection down.
  bool Rearm(Slot* slot);

  void Add(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1);

  const ReactorOptions options_;
  // Either timeout is set: reads and sends stamp last_activity_ms.
  const bool track_activity_ = options_.idle_timeout > absl::ZeroDuration() ||
                               options_.write_timeout > absl::ZeroDuration();
  // Consecutive re-reads a connection may have before it is re-armed
  // (reread_rounds, with -1 meaning no bound).
  const int max_reread_rounds_ = options_.reread_rounds < 0
                                     ? std::numeric_limits<int>::max()
                                     : options_.reread_rounds;
  const bool park_relays_ = options_.park_relays && options_.reread_rounds != 0;
  Reactor* owner_ = nullptr;
  Poller poller_;
  ScopedFd wake_;  // eventfd: posted tasks and Stop
  TimerQueue timers_;
  ConnectionTable table_;
  Scheduler scheduler_;
  std::atomic<bool> stopping_{false};
  // Drain(): no accepts, close connections. An integer so that openers can
  // read it with an RMW (see OpenConnection).
  std::atomic<uint32_t> draining_{0};
  // StopAccepting() (or Drain) shut the listeners; set under
  // listeners_mu_, so Listen cannot add one that stays open.
  std::atomic<bool> accepting_stopped_{false};

  Mutex task_mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(task_mu_);

  Mutex listeners_mu_;
  // Sets accepting_stopped_ and shuts every listener (once).
  void ShutListenersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(listeners_mu_);
  // Never shrinks while the reactor runs: a listener's index is its epoll
  // source, and its object must outlive any event naming it.
  std::vector<std::unique_ptr<Listener>> listeners_
      ABSL_GUARDED_BY(listeners_mu_);

  // A spare descriptor given up to accept-and-close one connection when the
  // process runs out of descriptors (EMFILE/ENFILE).
  Mutex reserve_mu_;
  ScopedFd reserve_fd_ ABSL_GUARDED_BY(reserve_mu_);

  // Adopt against Wait: once the workers are joined and the last sweep of
  // the table begins, Adopt refuses (and closes) instead of leaving a
  // connection nobody will close. Never held while joining, so an Adopt
  // from a handler cannot deadlock with Wait.
  Mutex adopt_mu_;
  bool adopt_closed_ ABSL_GUARDED_BY(adopt_mu_) = false;

  Mutex lifecycle_mu_;
  bool started_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  bool joined_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(lifecycle_mu_);

  // One per worker, plus one shared by non-worker threads (fetch_add).
  std::unique_ptr<WorkerCounters[]> counters_;
  int num_workers_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_REACTOR_CORE_H_
