// Internal: Scheduler.
#include "lib/internal/scheduler.h"

#include <algorithm>

namespace baton::internal {

Scheduler::Role Scheduler::Next(Seat& seat, ReadyItem* item,
                                int* timeout_ms) {
  MutexLock lock(&mu_);
  if (seat.running) {
    seat.running = false;
    --running_;
  }
  for (;;) {
    if (shutdown_) return Role::kExit;
    if (!ready_.empty()) {
      *item = ready_.front();
      ready_.pop_front();
      if (item->poll_mark) poll_mark_queued_ = false;
      PublishLengthLocked();
      if (item->poll_mark) {
        if (leader_ || reserved_for_test_) continue;  // someone polls already
        leader_ = true;
        *timeout_ms = !ready_.empty() ? 0
                      : running_ > 0  ? kLeaderTimeoutMs
                                      : -1;
        return Role::kLead;
      }
      seat.running = true;
      ++running_;
      return Role::kRun;
    }
    if (!leader_ && !reserved_for_test_) {
      leader_ = true;
      // Only running threads queue items (Push); a leader that took the
      // role with none running can wait for the kernel alone.
      *timeout_ms = running_ > 0 ? kLeaderTimeoutMs : -1;
      return Role::kLead;
    }
    SleepLocked();
  }
}

void Scheduler::SleepLocked() {
  ++sleeping_;
  idle_hint_.store(sleeping_ - wakeups_, std::memory_order_relaxed);
  cv_.Wait(&mu_);
  --sleeping_;
  if (wakeups_ > 0) --wakeups_;
  idle_hint_.store(sleeping_ - wakeups_, std::memory_order_relaxed);
}

size_t Scheduler::LengthLocked() const {
  return ready_.size() - (poll_mark_queued_ ? 1 : 0);
}

void Scheduler::PublishLengthLocked() {
  queued_hint_.store(LengthLocked(), std::memory_order_relaxed);
}

void Scheduler::MarkPassLocked() {
  if (poll_mark_queued_) return;
  ReadyItem mark;
  mark.poll_mark = true;
  ready_.push_back(mark);
  poll_mark_queued_ = true;
}

int Scheduler::Handoff(Seat& seat, const ReadyItem* items, int n) {
  MutexLock lock(&mu_);
  ready_.insert(ready_.end(), items, items + n);
  if (n > 0) MarkPassLocked();
  PublishLengthLocked();
  leader_ = false;
  if (!seat.running) {
    seat.running = true;  // it runs what it kept until its next Next()
    ++running_;
  }
  // A test waiting for the role to be vacant sleeps among the workers.
  if (reserved_for_test_) cv_.SignalAll();
  // One sleeper per queued item, plus one to take the vacant role.
  return WakeLocked(n + 1);
}

bool Scheduler::RescueDue(int* timeout_ms) {
  MutexLock lock(&mu_);
  if (ready_.empty()) {
    *timeout_ms = running_ > 0 ? kLeaderTimeoutMs : -1;
    return false;
  }
  leader_ = false;
  MarkPassLocked();
  WakeLocked(1);
  return true;
}

void Scheduler::Push(const ReadyItem& item) {
  MutexLock lock(&mu_);
  ready_.push_back(item);
  PublishLengthLocked();
  WakeLocked(1);
}

int Scheduler::WakeLocked(int n) {
  const int woken = std::min(n, sleeping_ - wakeups_);
  for (int i = 0; i < woken; ++i) {
    ++wakeups_;
    cv_.Signal();
  }
  if (woken > 0) {
    idle_hint_.store(sleeping_ - wakeups_, std::memory_order_relaxed);
  }
  return std::max(woken, 0);
}

void Scheduler::Shutdown() {
  MutexLock lock(&mu_);
  shutdown_ = true;
  cv_.SignalAll();
}

void Scheduler::ReserveLeaderRoleForTest() {
  MutexLock lock(&mu_);
  reserved_for_test_ = true;
}

void Scheduler::AwaitVacantLeaderRoleForTest() {
  MutexLock lock(&mu_);
  while (leader_ && !shutdown_) SleepLocked();
}

void Scheduler::ReleaseLeaderRoleForTest() {
  MutexLock lock(&mu_);
  reserved_for_test_ = false;
  WakeLocked(1);
}

bool Scheduler::has_leader() const {
  MutexLock lock(&mu_);
  return leader_;
}

int Scheduler::sleeping() const {
  MutexLock lock(&mu_);
  return sleeping_;
}

size_t Scheduler::queued() const {
  MutexLock lock(&mu_);
  return LengthLocked();
}

}  // namespace baton::internal
