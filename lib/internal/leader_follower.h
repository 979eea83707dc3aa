// Internal header: LeaderFollowerGate, the hand-off of the epoll_wait role.
//
// Worker threads loop: BecomeLeader() -> epoll_wait -> PromoteSuccessor() ->
// handle the events taken. The gate guarantees that at most one thread holds
// the leader role (and so at most one thread is in epoll_wait), and that the
// role is never left vacant while a thread is idle: a thread that finishes
// its handlers either takes the vacant role itself or sleeps as a follower,
// and the leader gives the role up (waking one follower, if any sleeps)
// before it runs a single handler.
//
// Cost: one uncontended mutex acquisition per BecomeLeader and per
// PromoteSuccessor, and a futex wake only when a follower is actually asleep.
// With every thread busy, or with a single thread, no thread is ever woken.
#ifndef BATON_INTERNAL_LEADER_FOLLOWER_H_
#define BATON_INTERNAL_LEADER_FOLLOWER_H_

#include "absl/base/thread_annotations.h"
#include "lib/internal/mutex.h"

namespace baton::internal {

class LeaderFollowerGate {
 public:
  LeaderFollowerGate() = default;
  LeaderFollowerGate(const LeaderFollowerGate&) = delete;
  LeaderFollowerGate& operator=(const LeaderFollowerGate&) = delete;

  // Blocks until the caller holds the leader role (returns true) or the gate
  // is shut down (returns false).
  bool BecomeLeader() ABSL_LOCKS_EXCLUDED(mu_);

  // Gives up the leader role held by the caller. Wakes one sleeping follower
  // if there is one; returns whether it did.
  bool PromoteSuccessor() ABSL_LOCKS_EXCLUDED(mu_);

  // Makes every current and future BecomeLeader return false.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // For tests and debug checks.
  bool has_leader() const ABSL_LOCKS_EXCLUDED(mu_);
  int sleeping_followers() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable Mutex mu_;
  CondVar follower_cv_;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;
  // Wake-ups sent by PromoteSuccessor and not yet consumed; a woken follower
  // consumes one, so a spurious wake-up cannot make two threads believe they
  // were promoted (the leader_ flag decides anyway).
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_LEADER_FOLLOWER_H_
