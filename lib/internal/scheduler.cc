// Internal: Scheduler.
#include "lib/internal/scheduler.h"

#include <glog/logging.h>

#include <algorithm>

#include "lib/internal/connection_table.h"
#include "lib/net/clock.h"

namespace baton::internal {

Scheduler::Role Scheduler::Next(bool& running, ReadyItem* item,
                                int* timeout_ms) {
  MutexLock lock(&mu_);
  if (running) {
    running = false;
    --running_;
  }
  for (;;) {
    if (shutdown_) return Role::kExit;
    if (TakeOverdueHandshakeLocked(item)) {
      running = true;
      ++running_;
      return Role::kRun;
    }
    if (!ready_.empty()) {
      *item = ready_.front();
      ready_.pop_front();
      const bool poll_mark = item->kind == WorkKind::kPollMark;
      if (poll_mark) poll_mark_queued_ = false;
      PublishLengthLocked();
      if (poll_mark) {
        if (leader_ || reserved_for_test_) continue;  // someone polls already
        TakeRoleLocked();
        *timeout_ms = LeaderTimeoutLocked();
        return Role::kLead;
      }
      running = true;
      ++running_;
      return Role::kRun;
    }
    if (!leader_ && !reserved_for_test_) {
      TakeRoleLocked();
      if (!ready_.empty()) {
        // Parked connections came due: run them first, then poll.
        leader_ = false;
        MarkPassLocked();
        continue;
      }
      // Only running threads queue items (Push); a leader that took the
      // role with none running (parked connections were just queued for
      // re-arming, above) can wait for the kernel alone.
      *timeout_ms = LeaderTimeoutLocked();
      return Role::kLead;
    }
    SleepLocked();
  }
}

bool Scheduler::TakeOverdueHandshakeLocked(ReadyItem* item) {
  if (HandshakeDueMsLocked() != 0) return false;
  *item = handshakes_.front().item;
  handshakes_.pop_front();
  return true;
}

int Scheduler::HandshakeDueMsLocked() const {
  if (handshakes_.empty() ||
      handshake_max_wait_ns_ == std::numeric_limits<int64_t>::max()) {
    return -1;
  }
  const int64_t waited = net::MonotonicNanos() - handshakes_.front().queued_ns;
  if (waited >= handshake_max_wait_ns_) return 0;
  const int64_t left_ns = handshake_max_wait_ns_ - waited;  // positive
  const int64_t left_ms = left_ns / 1000000 + (left_ns % 1000000 != 0);
  return static_cast<int>(
      std::min<int64_t>(left_ms, std::numeric_limits<int>::max()));
}

void Scheduler::SleepLocked() {
  ++sleeping_;
  idle_hint_.store(sleeping_ - wakeups_, std::memory_order_relaxed);
  cv_.Wait(&mu_);
  --sleeping_;
  if (wakeups_ > 0) --wakeups_;
  idle_hint_.store(sleeping_ - wakeups_, std::memory_order_relaxed);
}

void Scheduler::TakeRoleLocked() {
  leader_ = true;
  ++leader_turns_;
  if (parked_.empty()) return;
  if (running_ == 0 && LengthLocked() == 0) {
    // Nothing else runs or waits: the leader would block for the kernel,
    // and nobody would write to a parked connection meanwhile. Re-arm them
    // (a timed wait would cost more than the epoll_ctl parking saved).
    ExpireParkedLocked(ParkEnd::kIdle);
  } else {
    ExpireParkedLocked(ParkEnd::kTurns);
  }
}

int Scheduler::LeaderTimeoutLocked() const {
  if (LengthLocked() > 0) return 0;
  // A queued handshake step must not wait past its bound for an event that
  // brings a thread through Next: the wait ends when it falls due.
  const int handshake_ms = HandshakeDueMsLocked();
  if (running_ > 0) {
    return handshake_ms < 0 ? kLeaderTimeoutMs
                            : std::min(kLeaderTimeoutMs, handshake_ms);
  }
  if (handshake_ms >= 0) return handshake_ms;
  // Blocking without a bound: every parked connection was taken back first
  // (TakeRoleLocked, RescueDue), or nobody could ever write to it.
  DCHECK(parked_.empty()) << parked_.size() << " parked, no wait bound";
  return -1;
}

bool Scheduler::Park(Slot* slot) {
  MutexLock lock(&mu_);
  // The ticket is written before the flag, and both under mu_, which the
  // bound also holds: it never mistakes this parking for an earlier one.
  const uint64_t ticket = ++park_tickets_;
  slot->park_ticket = ticket;
  uint32_t generation = 0;
  if (!ConnectionTable::Park(slot, &generation)) return false;
  parked_.push_back(Parked{slot, generation, ticket, leader_turns_});
  return true;
}

int Scheduler::ExpireParkedLocked(ParkEnd end) {
  int queued = 0;
  while (!parked_.empty() &&
         (end != ParkEnd::kTurns ||
          leader_turns_ - parked_.front().turn >= kParkPasses)) {
    const Parked entry = parked_.front();
    parked_.pop_front();
    if (entry.slot->park_ticket != entry.ticket ||
        !ConnectionTable::Unpark(entry.slot, entry.generation)) {
      continue;  // taken over since (and maybe parked again)
    }
    QueueClaimedLocked(
        entry.slot,
        end == ParkEnd::kIdle ? WorkKind::kParkIdle : WorkKind::kParkExpired,
        /*reread_round=*/0);
    ++queued;
  }
  if (queued > 0) {
    PublishLengthLocked();
    WakeLocked(queued);
  }
  return queued;
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
  mark.kind = WorkKind::kPollMark;
  ready_.push_back(mark);
  poll_mark_queued_ = true;
}

int Scheduler::Handoff(bool& running, const ReadyItem* items, int n) {
  MutexLock lock(&mu_);
  // Ahead of what is queued (re-reads and requests queued during the pass
  // that ended with this poll; never older events): a connection whose
  // re-read missed came back through epoll and has waited most of a pass
  // already, and a re-read that waits longer finds its answer more often.
  ready_.insert(ready_.begin(), items, items + n);
  // Whatever is queued now (this batch, or re-reads queued while the
  // leader waited) is followed by a poll: with the role vacant and no mark,
  // re-reads that keep hitting would keep every thread busy, and nobody
  // would poll the armed connections until the queue ran dry.
  if (LengthLocked() > 0) MarkPassLocked();
  PublishLengthLocked();
  leader_ = false;
  if (!running) {
    running = true;  // it runs what it kept until its next Next()
    ++running_;
  }
  // A test waiting for the role to be vacant sleeps among the workers.
  if (reserved_for_test_) cv_.SignalAll();
  // One sleeper per queued item, plus one to take the vacant role.
  return WakeLocked(n + 1);
}

bool Scheduler::RescueDue(int* timeout_ms, bool waited) {
  MutexLock lock(&mu_);
  if (waited && !parked_.empty()) {
    ExpireParkedLocked(ParkEnd::kWaited);
  } else if (!parked_.empty() && running_ == 0 && LengthLocked() == 0) {
    // A poll between passes found nothing, and the threads that ran the
    // rest of the pass have gone idle: the next wait would have no bound,
    // and nobody is left to write to a parked connection. Re-arm them
    // first, as a leader taking the role in that state does.
    ExpireParkedLocked(ParkEnd::kIdle);
  }
  if (ready_.empty() && HandshakeDueMsLocked() != 0) {
    *timeout_ms = LeaderTimeoutLocked();
    return false;
  }
  leader_ = false;
  MarkPassLocked();
  WakeLocked(1);
  return true;
}

void Scheduler::PushClaimed(Slot* slot, WorkKind kind, int reread_round) {
  MutexLock lock(&mu_);
  QueueClaimedLocked(slot, kind, reread_round);
  PublishLengthLocked();
  WakeLocked(1);
}

void Scheduler::QueueClaimedLocked(Slot* slot, WorkKind kind,
                                   int reread_round) {
  DCHECK(slot != nullptr);
  DCHECK(kind != WorkKind::kEvent && kind != WorkKind::kPollMark)
      << "not a kind of work that carries a connection";
  DCHECK_EQ(kind == WorkKind::kReread, reread_round > 0)
      << "a re-read counts its rounds from 1, nothing else has rounds";
  ReadyItem item;
  item.kind = kind;
  item.slot = slot;  // the claim travels with the item
  item.round = reread_round;
  ready_.push_back(item);
}

void Scheduler::PushHandshake(Slot* slot, uint32_t revents) {
  DCHECK(slot != nullptr);
  ReadyItem item;
  item.kind = WorkKind::kHandshake;
  item.events = revents;
  item.slot = slot;  // the claim travels with the item
  const int64_t now = net::MonotonicNanos();
  MutexLock lock(&mu_);
  handshakes_.push_back(QueuedHandshake{item, now});
  handshake_cv_.Signal();
}

bool Scheduler::NextHandshake(ReadyItem* item) {
  MutexLock lock(&mu_);
  while (handshakes_.empty() && !shutdown_) handshake_cv_.Wait(&mu_);
  if (shutdown_) return false;
  *item = handshakes_.front().item;
  handshakes_.pop_front();
  return true;
}

void Scheduler::Push(const ReadyItem& item) {
  DCHECK(item.kind == WorkKind::kEvent) << "PushClaimed queues connections";
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
  handshake_cv_.SignalAll();
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
