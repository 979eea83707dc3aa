// Internal header: TimerQueue, user and internal timers behind one timerfd.
#ifndef BATON_INTERNAL_TIMER_QUEUE_H_
#define BATON_INTERNAL_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "lib/internal/mutex.h"
#include "lib/internal/scoped_fd.h"
#include "lib/net/clock.h"

namespace baton::internal {

// Which API a timer belongs to. Ids come from one counter, so an id of one
// kind can look valid to the other: Cancel finds a timer only when given
// its kind, so Reactor::CancelTimer never reaches a connection's timer (or
// the reactor's own) and the other way round.
enum class TimerKind {
  kReactor,   // Reactor::RunAfter / RunEvery
  kInternal,  // everything else: per-connection timers, connect deadlines,
              // the idle sweep, linger and accept back-off
};

// Deadlines on CLOCK_MONOTONIC, kept in a map ordered by (deadline, id); the
// timerfd is programmed for the earliest one. A deadline of
// net::kNeverNanos never falls due (the timer only waits to be cancelled).
// Thread-safe. Callbacks run on whichever thread calls RunDue, outside the
// lock; each one is checked under the lock just before it starts, so a
// Cancel (or Clear) that returns while an earlier callback of the same
// batch runs still stops it.
class TimerQueue {
 public:
  TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // The timerfd to register with epoll (non-blocking, close-on-exec).
  int fd() const { return fd_.get(); }

  // Runs `fn` at `deadline_ns`, then every `period_ns` if positive (each
  // next deadline from net::DeadlineAfter, so a huge period means the
  // timer does not run again). Returns an id (never 0).
  uint64_t Add(int64_t deadline_ns, int64_t period_ns, std::function<void()> fn,
               TimerKind kind = TimerKind::kInternal) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes the timer: its callback never starts after Cancel returns.
  // True if the timer existed and its callback is not running on another
  // thread either, so whatever the callback uses may be freed at once.
  // False if there was no such timer of this `kind` (cancelled, a one-shot
  // that already started, or a timer of the other kind, which is left
  // alone) or its callback is running on another thread right now: that
  // run is not waited for. A callback cancelling its own timer gets true.
  bool Cancel(uint64_t id, TimerKind kind = TimerKind::kInternal)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Consumes the timerfd's expiration count, runs every timer due now, and
  // reprograms the timerfd. Returns the number of callbacks run.
  int RunDue() ABSL_LOCKS_EXCLUDED(mu_);

  // Drops every timer (their callbacks are destroyed unrun), including the
  // not yet started rest of a batch that RunDue is running.
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Timer {
    int64_t deadline_ns;
    int64_t period_ns;
    std::shared_ptr<std::function<void()>> fn;
  };

  // Live::deadline_ns of a one-shot timer taken into a RunDue batch that
  // has not started yet (it is no longer in by_deadline_).
  static constexpr int64_t kTakenForRun = -1;

  struct Live {
    int64_t deadline_ns;
    TimerKind kind;
  };

  void ProgramLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ScopedFd fd_;
  mutable Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<int64_t, uint64_t>, Timer> by_deadline_
      ABSL_GUARDED_BY(mu_);
  // Every live timer: scheduled, or taken into a batch and not yet started.
  absl::flat_hash_map<uint64_t, Live> live_ ABSL_GUARDED_BY(mu_);
  // Callbacks running now, per timer id (more than one only if RunDue runs
  // on several threads and a periodic callback outlasts its period).
  absl::flat_hash_map<uint64_t, int> running_ ABSL_GUARDED_BY(mu_);
  // Deadline the timerfd is programmed for (0: disarmed; also when the
  // earliest deadline is net::kNeverNanos).
  int64_t programmed_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_TIMER_QUEUE_H_
