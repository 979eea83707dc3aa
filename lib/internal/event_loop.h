// Internal header: EventLoop, the worker loop. Leader/followers around
// epoll_wait with the Scheduler's shared ready queue, dispatch of every
// event taken, posted tasks, the reactor's timer queue and its stop flag.
//
// Owns: the wake-up eventfd, the posted tasks (and their mutex), the
//   stopping flag (set under the tasks' mutex, so no task is accepted
//   after Stop), each worker's WorkerContext.
// Uses: ReactorOptions, Poller, Scheduler, ConnectionTable, TimerQueue,
//   CounterSet, Resolver (its sockets' events).
// Threads: WorkerMain and Dispatch run on workers; Post, AddTimer, the
//   stop flag and Wake are safe from any thread.
// Calls: ConnectionIo::Serve (an event or an item for a connection),
//   Acceptor::HandleEvent (a listener's event).
#ifndef BATON_INTERNAL_EVENT_LOOP_H_
#define BATON_INTERNAL_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/mutex.h"
#include "lib/internal/poller.h"
#include "lib/internal/resolver.h"
#include "lib/internal/scheduler.h"
#include "lib/internal/scoped_fd.h"
#include "lib/internal/timer_queue.h"

namespace baton::internal {

class Acceptor;
class ConnectionIo;

class EventLoop {
 public:
  // `io` and `acceptor` may not be constructed yet: they are used only
  // once a worker runs.
  EventLoop(const ReactorOptions& options, Poller& poller, Scheduler& scheduler,
            ConnectionTable& table, TimerQueue& timers, CounterSet& counters,
            Resolver& resolver, ConnectionIo* io, Acceptor* acceptor);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The body of worker thread `index`, until the Scheduler shuts down.
  void WorkerMain(int index);

  // The body of TLS handshake thread `index` (counted after the workers'
  // indexes), until the Scheduler shuts down: lowers its own priority,
  // then serves deferred handshake steps (Scheduler::NextHandshake).
  void HandshakeMain(int index);

  // Dispatches one epoll event (as epoll_wait returned it, or synthetic
  // in tests): an internal source (a resolver socket among them), or a
  // connection to claim and serve.
  void Dispatch(uint64_t data, uint32_t events);

  // Reactor::Post: false once stopping.
  bool Post(std::function<void()> task);
  // A timer queue entry due `delay_ns` from now (net::DeadlineAfter: a
  // huge delay never falls due), then every `period_ns` if positive; 0 if
  // stopping.
  uint64_t AddTimer(int64_t delay_ns, int64_t period_ns,
                    std::function<void()> fn,
                    TimerKind kind = TimerKind::kInternal);

  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Sets the stopping flag (under the tasks' mutex); false if it was set.
  bool BeginStop();
  // Makes the current (or next) leader's epoll_wait return.
  void Wake();
  // After the workers are joined: tasks still queued can only exist if the
  // workers never ran; drops them.
  void DropTasks();

 private:
  // Runs one item from the ready queue: an event, or a claimed connection.
  void RunItem(const ReadyItem& item);
  // A thread's WorkerContext (its counters block `index`, read buffer) and
  // name (thread_name, `kind`, index), set for the calling thread.
  void InitThread(WorkerContext* context, int index, const char* kind);
  void HandleInternal(uint64_t source);
  void RunTasks();
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  const ReactorOptions& options_;
  Poller& poller_;
  Scheduler& scheduler_;
  ConnectionTable& table_;
  TimerQueue& timers_;
  CounterSet& counters_;
  Resolver& resolver_;
  ConnectionIo* const io_;
  Acceptor* const acceptor_;

  std::atomic<bool> stopping_{false};
  ScopedFd wake_;  // eventfd: posted tasks and Stop
  Mutex task_mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(task_mu_);
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_EVENT_LOOP_H_
