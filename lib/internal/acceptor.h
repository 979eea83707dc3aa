// Internal header: Acceptor, the reactor's listeners. Listen, the accept
// loop run on a listener's event, descriptor exhaustion, StopAccepting, and
// Adopt (connections made elsewhere).
//
// Owns: the listeners (and their mutex), the accepting_stopped flag, the
//   reserve descriptor given up when the process runs out of them.
// Uses: Poller, ConnectionTable, CounterSet, AdoptGate.
// Threads: Listen, Adopt, StopAccepting and ShutForStop are safe from
//   any thread; HandleEvent runs on a worker; CloseListeners after the
//   workers are joined.
// Calls: EventLoop (stopping, Post, AddTimer), ConnectionLifetime
//   (OpenConnection, Teardown).
#ifndef BATON_INTERNAL_ACCEPTOR_H_
#define BATON_INTERNAL_ACCEPTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "baton/reactor.h"
#include "lib/internal/adopt_gate.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/event_loop.h"
#include "lib/internal/mutex.h"
#include "lib/internal/poller.h"
#include "lib/internal/scoped_fd.h"
#include "lib/internal/unix_listener.h"
#include "lib/tls/tls_context.h"

namespace baton::internal {

class Acceptor {
 public:
  // `lifetime` may not be constructed yet: it is used only once a
  // connection is accepted or adopted.
  Acceptor(Poller& poller, ConnectionTable& table, CounterSet& counters,
           AdoptGate& adopt_gate, EventLoop* loop,
           ConnectionLifetime* lifetime);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Reactor::Listen / Reactor::Adopt.
  absl::StatusOr<int> Listen(const ListenOptions& options,
                             HandlerFactory factory);
  absl::StatusOr<ConnectionId> Adopt(int fd, HandlerFactory factory);

  // An event of internal source `source` (a listener's, if it names one).
  void HandleEvent(uint64_t source);

  // Runs `first` under the listeners' mutex and, if it returns true, sets
  // accepting_stopped and shuts every listener (once): StopAccepting, and
  // Drain (whose `first` claims the drain).
  void StopAccepting(absl::FunctionRef<bool()> first);
  // Stop: shuts every listener (not close: a thread inside a listener's
  // handler never sees its descriptor number reused).
  void ShutForStop();
  // After the workers are joined: closes the listeners' descriptors.
  void CloseListeners();

  // Listeners are shut (StopAccepting, Drain or Stop): no accepts, no
  // Listen.
  bool accepting_stopped() const {
    return stopping() || accepting_stopped_.load(std::memory_order_acquire);
  }

 private:
  struct Listener {
    ScopedFd fd;
    HandlerFactory factory;
    uint64_t source = 0;
    // TCP_DEFER_ACCEPT: the first bytes are there at accept time; read them
    // then instead of waiting for an event.
    bool read_at_accept = false;
    // A Unix socket listener's file, removed when the listener shuts.
    UnixSocketFile unix_file;
    // A TLS listener's context (ListenOptions::tls), shared by its
    // connections' sessions.
    std::shared_ptr<const tls::TlsContext> tls;
  };
  // Shuts one listener: shutdown(), not close, so that a thread inside its
  // handler never sees the descriptor number reused (the descriptors are
  // closed after the workers are joined); a Unix listener's file goes.
  static void Shut(Listener& listener);
  using OpenMode = ConnectionLifetime::OpenMode;

  void HandleListener(Listener* listener);
  // Accepts one waiting client with the reserved descriptor and closes it
  // (counted as rejected); used when accept4 runs out of descriptors.
  void ShedOneConnection(Listener* listener);
  // Sets accepting_stopped_ and shuts every listener (once).
  void ShutListenersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(listeners_mu_);

  // What the bodies call on their siblings (EventLoop, ConnectionLifetime),
  // by the names they have always used.
  bool stopping() const { return loop_->stopping(); }
  uint64_t AddTimer(int64_t delay_ns, int64_t period_ns,
                    std::function<void()> fn) {
    return loop_->AddTimer(delay_ns, period_ns, std::move(fn));
  }
  bool Post(std::function<void()> task) { return loop_->Post(std::move(task)); }
  void OpenConnection(Slot* slot, int fd, const HandlerFactory& factory,
                      OpenMode mode) {
    lifetime_->OpenConnection(slot, fd, factory, mode);
  }
  void Teardown(Slot* slot, const absl::Status& reason) {
    lifetime_->Teardown(slot, reason);
  }
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  Poller& poller_;
  ConnectionTable& table_;
  CounterSet& counters_;
  AdoptGate& adopt_gate_;
  EventLoop* const loop_;
  ConnectionLifetime* const lifetime_;

  // StopAccepting() (or Drain) shut the listeners; set under
  // listeners_mu_, so Listen cannot add one that stays open.
  std::atomic<bool> accepting_stopped_{false};
  Mutex listeners_mu_;
  // Never shrinks while the reactor runs: a listener's index is its epoll
  // source, and its object must outlive any event naming it.
  std::vector<std::unique_ptr<Listener>> listeners_
      ABSL_GUARDED_BY(listeners_mu_);

  // A spare descriptor given up to accept-and-close one connection when the
  // process runs out of descriptors (EMFILE/ENFILE).
  Mutex reserve_mu_;
  ScopedFd reserve_fd_ ABSL_GUARDED_BY(reserve_mu_);
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_ACCEPTOR_H_
