// Internal: TimerQueue.
#include "lib/internal/timer_queue.h"

#include <glog/logging.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "lib/net/clock.h"

namespace baton::internal {
namespace {

// The timer whose callback this thread is running (Cancel from inside it
// must not count it as running elsewhere).
struct RunningHere {
  const TimerQueue* queue = nullptr;
  uint64_t id = 0;
};
thread_local RunningHere running_here;

}  // namespace

TimerQueue::TimerQueue()
    : fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  PCHECK(fd_.valid()) << "timerfd_create";
}

uint64_t TimerQueue::Add(int64_t deadline_ns, int64_t period_ns,
                         std::function<void()> fn, TimerKind kind) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  by_deadline_.emplace(
      std::make_pair(deadline_ns, id),
      Timer{deadline_ns, period_ns,
            std::make_shared<std::function<void()>>(std::move(fn))});
  live_[id] = Live{deadline_ns, kind};
  if (deadline_ns != net::kNeverNanos &&
      (programmed_ns_ == 0 || deadline_ns < programmed_ns_)) {
    ProgramLocked();
  }
  return id;
}

bool TimerQueue::Cancel(uint64_t id, TimerKind kind) {
  MutexLock lock(&mu_);
  auto it = live_.find(id);
  if (it == live_.end() || it->second.kind != kind) return false;
  if (it->second.deadline_ns != kTakenForRun) {
    by_deadline_.erase(std::make_pair(it->second.deadline_ns, id));
  }
  live_.erase(it);
  // The timerfd may stay programmed for the cancelled deadline; RunDue then
  // finds nothing due and reprograms. Cheaper than a syscall per Cancel.
  auto running = running_.find(id);
  int elsewhere = running == running_.end() ? 0 : running->second;
  if (running_here.queue == this && running_here.id == id) --elsewhere;
  return elsewhere == 0;
}

int TimerQueue::RunDue() {
  uint64_t expirations;
  // Non-blocking; EAGAIN just means the timer was reprogrammed since it
  // fired.
  (void)!::read(fd_.get(), &expirations, sizeof(expirations));

  std::vector<std::pair<uint64_t, std::shared_ptr<std::function<void()>>>> due;
  {
    MutexLock lock(&mu_);
    const int64_t now = net::MonotonicNanos();
    while (!by_deadline_.empty() && by_deadline_.begin()->first.first <= now) {
      auto node = by_deadline_.extract(by_deadline_.begin());
      const uint64_t id = node.key().second;
      Timer& timer = node.mapped();
      due.emplace_back(id, timer.fn);
      if (timer.period_ns > 0) {
        // Periodic: schedule the next run from now, so a stalled reactor
        // does not fire a burst of catch-up callbacks.
        timer.deadline_ns = net::DeadlineAfter(now, timer.period_ns);
        node.key() = std::make_pair(timer.deadline_ns, id);
        live_[id].deadline_ns = timer.deadline_ns;
        by_deadline_.insert(std::move(node));
      } else {
        // Still cancellable until it starts.
        live_[id].deadline_ns = kTakenForRun;
      }
    }
    ProgramLocked();
  }
  int ran = 0;
  const RunningHere outer = running_here;
  for (auto& [id, fn] : due) {
    {
      // The callbacks before this one ran unlocked: a Cancel or Clear may
      // have come meanwhile, and "cancelled" means it does not start.
      MutexLock lock(&mu_);
      auto it = live_.find(id);
      if (it == live_.end()) continue;
      if (it->second.deadline_ns == kTakenForRun) live_.erase(it);
      ++running_[id];
    }
    running_here = RunningHere{this, id};
    (*fn)();
    running_here = outer;
    ++ran;
    MutexLock lock(&mu_);
    auto it = running_.find(id);
    if (--it->second == 0) running_.erase(it);
  }
  return ran;
}

void TimerQueue::Clear() {
  MutexLock lock(&mu_);
  by_deadline_.clear();
  live_.clear();
  ProgramLocked();
}

size_t TimerQueue::size() const {
  MutexLock lock(&mu_);
  return by_deadline_.size();
}

void TimerQueue::ProgramLocked() {
  itimerspec spec = {};
  int64_t next = 0;
  // Only timers that never fall due: leave the timerfd disarmed.
  if (!by_deadline_.empty() &&
      by_deadline_.begin()->first.first != net::kNeverNanos) {
    next = by_deadline_.begin()->first.first;
    // An absolute time of 0 would disarm the timer; a deadline in the past
    // fires at once.
    if (next <= 0) next = 1;
    spec.it_value.tv_sec = next / 1000000000;
    spec.it_value.tv_nsec = next % 1000000000;
  }
  PCHECK(::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) == 0)
      << "timerfd_settime";
  programmed_ns_ = next;
}

}  // namespace baton::internal
