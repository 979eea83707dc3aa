// Internal header: Scheduler, the leader/followers hand-off with a shared
// ready queue — which thread waits in epoll_wait, and which thread runs
// each piece of ready work.
//
// Every worker loops on Next():
//   kRun   an item from the ready queue: an epoll event some leader took
//          and did not start, or a connection kept claimed for a
//          re-read. Items are taken one at a time, so none
//          waits behind a handler that runs long (or a thread the kernel
//          has descheduled) while another thread is free.
//   kLead  the queue is empty and the leader role was vacant: the caller
//          now holds it and waits in epoll_wait. At most one thread does.
//   kExit  Shutdown() was called.
// The leader returns from epoll_wait with a batch, keeps the first event
// for itself and hands the rest over with Handoff(), which also gives up
// the role, before it runs a single handler. The batch goes ahead of the
// re-reads queued during the pass that ended with this poll: a connection
// whose re-read missed came back through epoll and has waited most of a
// pass already, while a re-read that waits longer hits more often.
//
// Waking: a thread sleeps (condition variable) only while the queue is
// empty and another thread leads. Handoff wakes one sleeper per item it
// queues plus one for the vacant role; Push wakes one per item. No sleeper,
// no wake-up: with one thread, or with every thread busy, nothing is ever
// signalled, and the cost per item is one uncontended mutex acquisition.
//
// Polling between passes: when a leader gives up the role with work
// queued (its batch, or re-reads queued while it waited, even if it kept
// its only event), a poll mark goes behind that work. The thread that
// reaches the mark, if nobody holds the role, takes it and polls epoll
// without blocking (or, with the queue empty, as a normal leader), so
// connections that became ready meanwhile join the queue after one pass
// instead of waiting until the queue runs dry (re-reads that keep hitting
// can keep it busy indefinitely). One epoll_wait per pass, as Boost.Asio's
// scheduler does with its reactor task.
//
// Re-reads only pay off for a thread working through a backlog: while a
// thread sleeps idle, a connection is re-armed at once instead
// (has_idle_thread), so no idle thread is woken for a re-read that would
// come too early and miss.
//
// Parking: a connection that relayed what it read to another connection
// (a proxy's side) will next have input once the answer comes back, which
// arrives as a Write to it. Its owner may park it (Park) instead of
// re-arming it: it stays claimed and disarmed, held by no thread, until a
// request takes the claim over (ConnectionTable::TryClaim: a Write to it,
// a Close, a timer) or the bound runs out: kParkPasses leader turns, or a
// leader's bounded wait (while other threads run items) that found
// nothing. Then it is queued for a read like a re-read
// (WorkKind::kParkExpired), which re-arms it if it finds nothing. A leader
// that would block in epoll_wait with nothing queued and nothing running
// (it takes the role in that state, or its poll between passes found
// nothing after the other threads went idle) would have nobody left to
// write to the parked connections: it queues them to be re-armed first
// (WorkKind::kParkIdle), so an idle reactor never waits with a timeout on
// their account, and no wait without a bound leaves one parked. The
// takeover and the bound race only through the claim word's
// compare-and-swap, so exactly one of them owns the connection.
//
// Handshake threads (ReactorOptions::tls_handshake_threads): a worker
// that finds a claimed connection in its TLS handshake queues it on a
// second queue (PushHandshake), served only by the handshake threads, which
// run at a lower priority (NextHandshake). A step that has waited longer
// than the bound (set_handshake_max_wait) is taken by the next worker in
// Next, as ready work of kind kHandshake, so busy workers cannot starve
// new clients; a leader waits no longer than until the oldest step falls
// due (LeaderTimeoutLocked). The handshake threads never lead and are not
// counted as running: a handshake step ends with a re-arm, and a handshake
// thread that left work on the ready queue (a Write to another
// connection, a yield) wakes the leader through the poller afterwards
// (EventLoop::HandshakeMain), so that work is not left behind a leader
// that waits without a bound.
//
// Rescue: an item queued while every other thread is busy and the leader
// is blocked in epoll_wait has nobody to take it if its queuer then blocks.
// So a leader that takes the role while other threads are running items
// waits at most LeaderTimeoutMs (Next tells it); when the wait times out it
// hands the role back (Handoff with no items) and takes queued work.
#ifndef BATON_INTERNAL_SCHEDULER_H_
#define BATON_INTERNAL_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <limits>
#include <type_traits>

#include "absl/base/thread_annotations.h"
#include "lib/internal/mutex.h"

namespace baton::internal {

struct Slot;

// What a queued piece of ready work is, and so how it is run. Every kind
// but kEvent and kPollMark carries a connection whose claim travels with
// the item.
enum class WorkKind : uint8_t {
  // An epoll event a leader took and did not start (`data`, `events`).
  // Queued by Handoff; RunItem dispatches it.
  kEvent,
  // A connection kept claimed for a re-read after a read that
  // found input; `round` says which re-read this is, from 1. Queued by
  // Serve; a miss re-arms it.
  kReread,
  // A connection whose reading stopped with input left (a full buffer)
  // because other ready work was queued. Queued by Serve; served as
  // readable, not as a re-read.
  kYield,
  // A connection claimed by a request (Reactor::Write / Close, a timer) on
  // a thread that is not its owner: queued by ForeignRequests::Request on
  // a reactor thread (or posted from another thread). Served with no
  // readiness assumed.
  kRequest,
  // A parked connection whose bound ran out. Queued by the scheduler
  // ("Parking"); read like a re-read, which re-arms it if it finds nothing.
  kParkExpired,
  // A parked connection taken back because every thread went idle. Queued
  // by the scheduler ("Parking"); re-armed without a read (EPOLLONESHOT
  // reports input that is already waiting as soon as it is armed).
  kParkIdle,
  // The end of a pass through the queue ("Polling between passes").
  // Scheduler-internal: queued by it and never returned by Next.
  kPollMark,
  // A connection in its TLS handshake that a worker deferred to the
  // handshake threads ("Handshake threads"), with the readiness it was
  // being served for (`events`). Queued by Serve with PushHandshake;
  // returned by NextHandshake, or by Next once it is overdue. Serve runs
  // it where it is returned.
  kHandshake,
};

// One piece of ready work: a kind and only the fields that kind uses (the
// others stay zero). Copied on the hot path: keep it small and trivially
// copyable.
struct ReadyItem {
  WorkKind kind = WorkKind::kEvent;
  // kEvent: the epoll event's events and data. kHandshake: the readiness
  // (revents) the deferred step is served for.
  uint32_t events = 0;
  uint64_t data = 0;
  // Every kind but kEvent and kPollMark: the claimed connection.
  Slot* slot = nullptr;
  // kReread: which re-read this is, from 1. Zero for every other kind.
  int round = 0;
};
static_assert(std::is_trivially_copyable<ReadyItem>::value,
              "ready items are copied in and out of the queue");

class Scheduler {
 public:
  // How long a leader waits in epoll_wait while other threads are running
  // items (see "Rescue" above).
  static constexpr int kLeaderTimeoutMs = 1;
  // Leader turns a parked connection waits at most (see "Parking").
  // Each pass through the queue ends with a poll, so this is about 8
  // passes; 3 ran out before the answer came through a proxy's upstream
  // at 100 connections once every pass polled (docs/leader_follower.md).
  static constexpr uint64_t kParkPasses = 8;

  enum class Role { kRun, kLead, kExit };

  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // `running`, in Next and Handoff: the calling thread's own flag (false
  // at first), true while it is counted in running_ (it ran an item or a
  // batch since its last Next). Passed by reference, so a signature shows
  // which calls change what the thread is doing.
  //
  // Blocks until the caller has an item to run (kRun, `*item` set), holds
  // the leader role (kLead, `*timeout_ms` set: -1; kLeaderTimeoutMs while
  // other threads run items; 0 when it reached a poll mark with work still
  // queued), or the scheduler is shut down (kExit).
  Role Next(bool& running, ReadyItem* item, int* timeout_ms)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The leader, back from epoll_wait: queues `items` (events taken and not
  // started; may be none) at the front, gives up the role and wakes
  // sleepers for the work. The caller then runs what it kept. Returns the
  // number woken.
  int Handoff(bool& running, const ReadyItem* items, int n)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The leader, after an epoll_wait returned nothing (`waited`: it had a
  // timeout, which ran out; parked connections have waited long enough
  // and are queued for a read. Otherwise, with nothing queued and nothing
  // running, they are queued to be re-armed: see "Parking"): if work is
  // queued or a deferred handshake step is overdue, gives up the role
  // (waking a sleeper to take it) and returns
  // true, so the caller goes back to Next and takes the work. Otherwise
  // keeps the role and updates `*timeout_ms` as Next would; -1 only with
  // nothing parked.
  bool RescueDue(int* timeout_ms, bool waited) ABSL_LOCKS_EXCLUDED(mu_);

  // The owner of `slot` parks it (see "Parking"): ConnectionTable::Park,
  // and the connection is remembered for the bound. True: the caller no
  // longer owns it and must not touch it. False: refused because work
  // arrived while it was claimed (kPending cleared); the caller still owns
  // it and serves it again.
  bool Park(Slot* slot) ABSL_LOCKS_EXCLUDED(mu_);

  // A running thread queues a connection whose claim it holds, at the
  // back, as work of `kind` (any kind that carries a connection);
  // `reread_round` only for kReread (from 1). The claim travels with the
  // item: the caller no longer owns the connection.
  void PushClaimed(Slot* slot, WorkKind kind, int reread_round = 0)
      ABSL_LOCKS_EXCLUDED(mu_);

  // How long a deferred handshake step may wait for a handshake thread
  // before Next gives it to a worker (the int64_t maximum, the default:
  // never). Set before any thread runs.
  void set_handshake_max_wait(int64_t nanos) { handshake_max_wait_ns_ = nanos; }

  // A thread serving `slot` (whose claim it holds) in its TLS handshake
  // defers it to the handshake threads, with the readiness it was served
  // for. The claim travels with the item.
  void PushHandshake(Slot* slot, uint32_t revents) ABSL_LOCKS_EXCLUDED(mu_);

  // A handshake thread: blocks until a deferred handshake step is queued
  // (true, `*item` set) or the scheduler is shut down (false).
  bool NextHandshake(ReadyItem* item) ABSL_LOCKS_EXCLUDED(mu_);

  // Queues an event item at the back, as PushClaimed does a connection
  // (tests stand events in for queued work).
  void Push(const ReadyItem& item) ABSL_LOCKS_EXCLUDED(mu_);

  // A hint, read without the lock: some thread sleeps idle (and so a leader
  // is waiting for the kernel).
  bool has_idle_thread() const {
    return idle_hint_.load(std::memory_order_relaxed) > 0;
  }

  // A hint, read without the lock: ready work (not counting a poll mark)
  // is queued, so other connections are waiting for a thread.
  bool has_queued_work() const {
    return queued_hint_.load(std::memory_order_relaxed) > 0;
  }

  // Makes every current and future Next return kExit. Queued items are
  // left for the caller (Drop) to account for.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Tests: reserves the leader role so that no worker takes it once the
  // current leader gives it up (the caller must make that leader's
  // epoll_wait return, e.g. with a posted task), then waits until it has.
  // From then until ReleaseLeaderRoleForTest no worker polls.
  void ReserveLeaderRoleForTest() ABSL_LOCKS_EXCLUDED(mu_);
  void AwaitVacantLeaderRoleForTest() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseLeaderRoleForTest() ABSL_LOCKS_EXCLUDED(mu_);

  // For tests and debug checks.
  bool has_leader() const ABSL_LOCKS_EXCLUDED(mu_);
  int sleeping() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t queued() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Sleeps until signalled; the caller loops on its condition.
  void SleepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a claimed connection as work of `kind` at the back: the one
  // place such an item is built (PushClaimed, ExpireParkedLocked).
  void QueueClaimedLocked(Slot* slot, WorkKind kind, int reread_round)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the oldest deferred handshake step into `*item` if it has waited
  // past the bound.
  bool TakeOverdueHandshakeLocked(ReadyItem* item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Milliseconds (rounded up) until the oldest deferred handshake step has
  // waited past the bound: 0 if it has, -1 if none is queued or there is
  // no bound.
  int HandshakeDueMsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a poll mark unless one is queued already.
  void MarkPassLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Items queued, not counting a poll mark.
  size_t LengthLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Mirrors LengthLocked() into queued_hint_.
  void PublishLengthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Signals up to `n` sleepers that have not been signalled yet.
  int WakeLocked(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the leader role: counts a leader turn and queues the parked
  // connections whose bound ran out (all of them if it would go idle).
  void TakeRoleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues parked connections: those parked kParkPasses leader turns ago
  // (kTurns) or all of them (kWaited) for a read, or all of them to be
  // re-armed (kIdle). Returns how many were queued.
  enum class ParkEnd { kTurns, kWaited, kIdle };
  int ExpireParkedLocked(ParkEnd end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How long a new leader may block: not at all with work queued; at most
  // kLeaderTimeoutMs while others run items; at most until a queued
  // handshake step falls due.
  int LeaderTimeoutLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<ReadyItem> ready_ ABSL_GUARDED_BY(mu_);
  // Deferred handshake steps, and the handshake threads' own wake-ups: they
  // never take the leader role or ready work, so they wait apart.
  CondVar handshake_cv_;
  struct QueuedHandshake {
    ReadyItem item;
    int64_t queued_ns;  // net::MonotonicNanos() at PushHandshake
  };
  std::deque<QueuedHandshake> handshakes_ ABSL_GUARDED_BY(mu_);
  int64_t handshake_max_wait_ns_ = std::numeric_limits<int64_t>::max();
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool reserved_for_test_ ABSL_GUARDED_BY(mu_) = false;
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;
  // Signals sent and not yet consumed by a sleeper; a woken thread consumes
  // one, so no sleeper is signalled twice for one piece of work.
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  // Threads running an item or a kept event (they may Push more).
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool poll_mark_queued_ ABSL_GUARDED_BY(mu_) = false;
  // Parked connections, oldest first. An entry whose connection was taken
  // over (and maybe parked again, with a new ticket) is dropped when it
  // comes up.
  struct Parked {
    Slot* slot;
    uint32_t generation;
    uint64_t ticket;  // Slot::park_ticket when parked
    uint64_t turn;    // leader_turns_ when parked
  };
  std::deque<Parked> parked_ ABSL_GUARDED_BY(mu_);
  uint64_t park_tickets_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t leader_turns_ ABSL_GUARDED_BY(mu_) = 0;
  // sleeping_ - wakeups_, mirrored for has_idle_thread().
  std::atomic<int> idle_hint_{0};
  // LengthLocked(), mirrored for has_queued_work().
  std::atomic<size_t> queued_hint_{0};
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_SCHEDULER_H_
