// Internal: LeaderFollowerGate.
#include "lib/internal/leader_follower.h"

namespace baton::internal {

bool LeaderFollowerGate::BecomeLeader() {
  MutexLock lock(&mu_);
  while (leader_ && !shutdown_) {
    ++sleeping_;
    follower_cv_.Wait(&mu_);
    --sleeping_;
    if (wakeups_ > 0) --wakeups_;
  }
  if (shutdown_) return false;
  leader_ = true;
  return true;
}

bool LeaderFollowerGate::PromoteSuccessor() {
  MutexLock lock(&mu_);
  leader_ = false;
  // Wake a follower only if one sleeps and no earlier wake-up is still on its
  // way to it; otherwise a thread finishing its handlers takes the role.
  if (sleeping_ > wakeups_) {
    ++wakeups_;
    follower_cv_.Signal();
    return true;
  }
  return false;
}

void LeaderFollowerGate::Shutdown() {
  MutexLock lock(&mu_);
  shutdown_ = true;
  follower_cv_.SignalAll();
}

bool LeaderFollowerGate::has_leader() const {
  MutexLock lock(&mu_);
  return leader_;
}

int LeaderFollowerGate::sleeping_followers() const {
  MutexLock lock(&mu_);
  return sleeping_;
}

}  // namespace baton::internal
