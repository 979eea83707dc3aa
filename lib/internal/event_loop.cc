// Internal: the worker loop. Leader/followers around epoll_wait with a
// shared ready queue (scheduler.h), dispatch of every event taken, posted
// tasks and timers.
#include <glog/logging.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/internal/reactor_core.h"
#include "lib/net/clock.h"

namespace baton::internal {
namespace {

thread_local WorkerContext* tls_worker = nullptr;

}  // namespace

WorkerContext* CurrentWorker() { return tls_worker; }

void ReactorCore::WorkerMain(int index) {
  WorkerContext context;
  context.core = this;
  context.index = index;
  context.read_buffer_size = options_.read_buffer_size;
  context.read_buffer.reset(new char[context.read_buffer_size]);
  tls_worker = &context;
  const std::string name =
      absl::StrCat(options_.thread_name, "-", index).substr(0, 15);
  pthread_setname_np(pthread_self(), name.c_str());

  std::vector<epoll_event> events(options_.max_events);
  std::vector<ReadyItem> handed(options_.max_events);
  Scheduler::Seat seat;
  for (;;) {
    ReadyItem item;
    int timeout_ms = -1;
    const Scheduler::Role role = scheduler_.Next(seat, &item, &timeout_ms);
    if (role == Scheduler::Role::kExit) break;
    if (role == Scheduler::Role::kRun) {
      RunItem(item);
      continue;
    }
    // The leader. Waits for the kernel; while other threads run items that
    // may queue more, at most a short while (Scheduler's "Rescue"); at a
    // poll mark with work queued, not at all ("Polling between passes").
    int n = poller_.Wait(events.data(), options_.max_events, timeout_ms);
    while (n == 0) {
      // A poll between passes (timeout 0) found nothing new, or a bounded
      // wait ran out: take queued work if there is any, else keep waiting.
      const bool rescue = timeout_ms > 0;
      if (scheduler_.RescueDue(&timeout_ms, /*waited=*/rescue)) {
        if (rescue) Add(&WorkerCounters::rescues);
        break;
      }
      n = poller_.Wait(events.data(), options_.max_events, timeout_ms);
    }
    if (n == 0) continue;  // gave the role up: take the queued work
    Add(&WorkerCounters::epoll_waits);
    Add(&WorkerCounters::events, static_cast<uint64_t>(n));
    // Keep the first event; every other one goes to the ready queue, where
    // any free thread can take it, and the role is given up, before a
    // single handler runs. The events are disarmed (EPOLLONESHOT): the next
    // leader cannot receive them again. (`handed` holds only kEvent items.)
    for (int i = 1; i < n; ++i) {
      handed[i - 1].data = events[i].data.u64;
      handed[i - 1].events = events[i].events;
    }
    const int woken = scheduler_.Handoff(seat, handed.data(), n - 1);
    Add(&WorkerCounters::handed_off, static_cast<uint64_t>(n - 1));
    Add(&WorkerCounters::promotions, static_cast<uint64_t>(woken));
    Dispatch(events[0]);
  }
  // Tasks accepted before Stop() are run, not dropped.
  RunTasks();
  tls_worker = nullptr;
}

void ReactorCore::RunItem(const ReadyItem& item) {
  if (item.kind == WorkKind::kEvent) {
    epoll_event event = {};
    event.events = item.events;
    event.data.u64 = item.data;
    Dispatch(event);
    return;
  }
  Serve(item.slot, item.kind, /*revents=*/0, item.round);  // claimed
}

void ReactorCore::Dispatch(const epoll_event& event) {
  const uint64_t data = event.data.u64;
  if (data & kInternalTag) {
    if (data & kResolverSourceTag) {
      resolver_.HandleEvent(data, event.events);  // a c-ares socket
      return;
    }
    HandleInternal(data & ~kInternalTag);
    return;
  }
  Slot* slot = table_.Lookup(IndexOfId(data));
  if (slot == nullptr) {
    Add(&WorkerCounters::stale_events);
    return;
  }
  switch (ConnectionTable::TryClaim(slot, GenerationOfId(data))) {
    case ClaimResult::kStale:
      // The connection this event was armed for is gone; its slot (and
      // maybe its fd number) now belongs to another one.
      Add(&WorkerCounters::stale_events);
      return;
    case ClaimResult::kBusy:
      // Another thread owns it; kPending makes that thread look again.
      Add(&WorkerCounters::busy_events);
      return;
    case ClaimResult::kClaimed:
      slot->owner.armed = false;  // ONESHOT: delivering it disarmed the fd
      Serve(slot, event.events);
      return;
  }
}

void ReactorCore::HandleInternal(uint64_t source) {
  if (source == kWakeSource) {
    uint64_t count;
    (void)!::read(wake_.get(), &count, sizeof(count));
    RunTasks();
    // The read may have swallowed Stop()'s wake-up while another worker
    // already holds the leader role and is about to block in epoll_wait:
    // once stopping, keep the eventfd readable so every later epoll_wait
    // returns and its caller reaches the gate and exits. (Found by the Spin
    // model, docs/model.md.)
    if (stopping()) {
      const uint64_t one = 1;
      (void)!::write(wake_.get(), &one, sizeof(one));
    }
    poller_.ArmInternal(wake_.get(), /*add=*/false, kWakeSource);
    return;
  }
  if (source == kTimerSource) {
    const int ran = timers_.RunDue();
    Add(&WorkerCounters::tasks, static_cast<uint64_t>(ran));
    poller_.ArmInternal(timers_.fd(), /*add=*/false, kTimerSource);
    return;
  }
  Listener* listener = nullptr;
  {
    MutexLock lock(&listeners_mu_);
    const uint64_t index = source - kListenerSourceBase;
    if (index < listeners_.size()) listener = listeners_[index].get();
  }
  if (listener != nullptr) HandleListener(listener);
}

void ReactorCore::RunTasks() {
  std::vector<std::function<void()>> tasks;
  {
    MutexLock lock(&task_mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
  Add(&WorkerCounters::tasks, tasks.size());
}

bool ReactorCore::Post(std::function<void()> task) {
  bool was_empty;
  {
    MutexLock lock(&task_mu_);
    if (stopping()) return false;
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // Only the first task of a batch pays for the wake-up; the thread that
  // drains the queue takes all of them.
  if (was_empty) {
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  }
  return true;
}

uint64_t ReactorCore::AddTimer(int64_t delay_ns, int64_t period_ns,
                               std::function<void()> fn, TimerKind kind) {
  if (stopping()) return 0;
  return timers_.Add(net::DeadlineAfter(net::MonotonicNanos(), delay_ns),
                     period_ns, std::move(fn), kind);
}

}  // namespace baton::internal
