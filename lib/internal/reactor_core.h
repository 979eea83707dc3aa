// Internal header: ReactorCore, the machinery behind baton::Reactor and
// baton::Connection. Part of //lib:baton's sources (it needs the public
// types), not of //lib:internal.
#ifndef BATON_INTERNAL_REACTOR_CORE_H_
#define BATON_INTERNAL_REACTOR_CORE_H_

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/internal/mutex.h"
#include "baton/connection.h"
#include "baton/counters.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/leader_follower.h"
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

// epoll data for the reactor's own sources: bit 63 set, low bits say which.
constexpr uint64_t kInternalTag = uint64_t{1} << 63;
constexpr uint64_t kWakeSource = 0;
constexpr uint64_t kTimerSource = 1;
constexpr uint64_t kListenerSourceBase = 16;

class ReactorCore {
 public:
  explicit ReactorCore(const ReactorOptions& options);
  ~ReactorCore();

  // --- baton::Reactor ---
  absl::StatusOr<int> Listen(const ListenOptions& options,
                             HandlerFactory factory);
  absl::StatusOr<ConnectionId> Adopt(int fd, HandlerFactory factory);
  absl::Status Start();
  void Stop();
  void Wait();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool draining() const {
    return draining_.load(std::memory_order_acquire) != 0;
  }
  void Drain();
  bool Post(std::function<void()> task);
  uint64_t AddTimer(int64_t delay_ns, int64_t period_ns,
                    std::function<void()> fn);
  bool CancelTimer(uint64_t id) { return timers_.Cancel(id); }
  bool Write(ConnectionId id, absl::string_view data);
  bool Request(ConnectionId id, uint32_t request);
  size_t connection_count() const { return table_.live(); }
  ReactorCounters Counters() const;
  std::vector<ReactorCounters> ThreadCounters() const;
  bool InReactorThread() const;
  const ReactorOptions& options() const { return options_; }
  // The public object this core serves (for Connection::reactor()).
  void set_owner(Reactor* owner) { owner_ = owner; }
  Reactor* owner() const { return owner_; }

  // Dispatches a synthetic epoll event as if epoll_wait had returned it.
  // Tests only; must run on a reactor thread (e.g. inside Post).
  void InjectEventForTest(uint64_t data, uint32_t events) {
    epoll_event event = {};
    event.events = events;
    event.data.u64 = data;
    Dispatch(event);
  }

  // --- baton::Connection (caller holds the claim on `slot`) ---
  // `more`: send with MSG_MORE (see WriteHint::kMoreFollows).
  void OwnerWrite(Slot* slot, absl::string_view data, bool more);
  // `transfer`: file_fd becomes the connection's (see FileOwnership).
  bool OwnerSendFile(Slot* slot, int file_fd, int64_t offset, int64_t length,
                     bool transfer);
  void OwnerClose(Slot* slot) { slot->closing = true; }
  void OwnerAbort(Slot* slot);

 private:
  struct Listener {
    ScopedFd fd;
    HandlerFactory factory;
    uint64_t source = 0;
    bool data_first = false;  // TCP_DEFER_ACCEPT: read at accept time
  };

  void WorkerMain(int index);
  void Dispatch(const epoll_event& event);
  void HandleInternal(uint64_t source);
  void HandleListener(Listener* listener);
  void RearmInternal(int fd, uint64_t source);
  bool ShedOneConnection(Listener* listener);
  void RunTasks();

  // Sets up a freshly allocated, claimed slot and serves it.
  // `accepted`: from one of our listeners, so TCP_NODELAY is inherited;
  // `readable`: input is known to be waiting (deferred accept).
  struct OpenMode {
    bool accepted = false;
    bool readable = false;
  };
  void OpenConnection(Slot* slot, int fd, const HandlerFactory& factory,
                      OpenMode mode);
  // How Service may end a round.
  enum class Defer { kAllowed, kNever };
  // The owner's loop: serves `revents` and requests, then either defers the
  // connection to this worker's re-read list (still claimed) or re-arms and
  // releases it. `speculative`: this is a re-read, not an epoll event.
  void Service(Slot* slot, uint32_t revents, bool speculative = false,
               Defer defer = Defer::kAllowed);
  // Serves one round; returns false if the connection was closed. Adds the
  // bytes read to `*bytes_read`.
  bool ServeOnce(Slot* slot, uint32_t revents, size_t* bytes_read);
  bool ReadInput(Slot* slot, uint32_t revents, size_t* bytes_read);
  bool MayDefer(Slot* slot);
  // Re-reads the connections deferred during a batch, then re-arms them.
  void RunDeferred();
  bool FlushOutput(Slot* slot);
  bool FinishClose(Slot* slot);
  void Rearm(Slot* slot);
  void CloseNow(Slot* slot, const absl::Status& reason);
  void SweepIdle();
  // Claims `id`'s slot for the calling foreign thread or leaves `request`
  // for the owner; a claim is handed to a reactor thread through Post.
  bool Kick(ConnectionId id, uint32_t request);
  void CloseAllAfterJoin();

  WorkerCounters& counters();
  void Add(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1);

  const ReactorOptions options_;
  // Either timeout is set: reads and sends stamp last_activity_ms.
  const bool track_activity_ = options_.idle_timeout > absl::ZeroDuration() ||
                               options_.write_timeout > absl::ZeroDuration();
  Reactor* owner_ = nullptr;
  ScopedFd epoll_;
  ScopedFd wake_;  // eventfd: posted tasks and Stop
  TimerQueue timers_;
  ConnectionTable table_;
  LeaderFollowerGate gate_;
  std::atomic<bool> stopping_{false};
  // Drain(): no accepts, close connections. An integer so that openers can
  // read it with an RMW (see OpenConnection).
  std::atomic<uint32_t> draining_{0};

  Mutex task_mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(task_mu_);

  Mutex listeners_mu_;
  // Never shrinks while the reactor runs: a listener's index is its epoll
  // source, and its object must outlive any event naming it.
  std::vector<std::unique_ptr<Listener>> listeners_
      ABSL_GUARDED_BY(listeners_mu_);

  // A spare descriptor given up to accept-and-close one connection when the
  // process runs out of descriptors (EMFILE/ENFILE).
  Mutex reserve_mu_;
  ScopedFd reserve_fd_ ABSL_GUARDED_BY(reserve_mu_);

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
