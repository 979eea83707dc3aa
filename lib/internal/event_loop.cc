// Internal: the worker loop. Leader/followers around epoll_wait with a
// shared ready queue (scheduler.h), dispatch of every event taken, posted
// tasks and timers.
#include "lib/internal/event_loop.h"

#include <glog/logging.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/internal/acceptor.h"
#include "lib/internal/connection_io.h"
#include "lib/internal/worker_context.h"
#include "lib/net/clock.h"

namespace baton::internal {
namespace {

// The ready item for an event a leader took and did not start.
ReadyItem EventItem(const epoll_event& event) {
  ReadyItem item;
  item.data = event.data.u64;
  item.events = event.events;
  return item;
}

}  // namespace

EventLoop::EventLoop(const ReactorOptions& options, Poller& poller,
                     Scheduler& scheduler, ConnectionTable& table,
                     TimerQueue& timers, CounterSet& counters,
                     Resolver& resolver, ConnectionIo* io, Acceptor* acceptor)
    : options_(options),
      poller_(poller),
      scheduler_(scheduler),
      table_(table),
      timers_(timers),
      counters_(counters),
      resolver_(resolver),
      io_(io),
      acceptor_(acceptor),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  PCHECK(wake_.valid()) << "eventfd";
  poller_.ArmInternal(wake_.get(), /*add=*/true, kWakeSource);
  poller_.ArmInternal(timers_.fd(), /*add=*/true, kTimerSource);
}

void EventLoop::InitThread(WorkerContext* context, int index,
                           const char* kind) {
  context->counters = &counters_;
  context->index = index;
  context->read_buffer_size = options_.read_buffer_size;
  context->read_buffer.reset(new char[context->read_buffer_size]);
  SetCurrentWorker(context);
  const std::string name =
      absl::StrCat(options_.thread_name, kind, index).substr(0, 15);
  pthread_setname_np(pthread_self(), name.c_str());
}

void EventLoop::HandshakeMain(int index) {
  WorkerContext context;
  context.handshake_thread = true;
  InitThread(&context, index, "-tls-");
  // Lower this thread's priority only (a thread id names one thread). A
  // failure costs the ordering, not correctness: log it and serve anyway.
  const id_t tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int nice_now = ::getpriority(PRIO_PROCESS, tid);
  const int nice_to =
      std::min(19, (errno == 0 ? nice_now : 0) + options_.tls_handshake_nice);
  if (::setpriority(PRIO_PROCESS, tid, nice_to) != 0) {
    PLOG(WARNING) << "setpriority(" << nice_to
                  << ") for a TLS handshake thread";
  }
  ReadyItem item;
  while (scheduler_.NextHandshake(&item)) {
    io_->Serve(item.slot, WorkKind::kHandshake, item.events);  // claimed
    // The step may have queued ready work (a Write to another connection
    // from OnOpen, a yield) that no sleeper was left to take, while the
    // leader waits without a bound: make it look (Scheduler, "Handshake
    // threads").
    if (scheduler_.has_queued_work()) Wake();
  }
  SetCurrentWorker(nullptr);
}

void EventLoop::WorkerMain(int index) {
  WorkerContext context;
  InitThread(&context, index, "-");

  std::vector<epoll_event> events(options_.max_events);
  std::vector<ReadyItem> handed(options_.max_events);
  bool running = false;  // counted by the Scheduler as running items
  for (;;) {
    ReadyItem item;
    int timeout_ms = -1;
    const Scheduler::Role role = scheduler_.Next(running, &item, &timeout_ms);
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
        if (rescue) Count(&WorkerCounters::rescues);
        break;
      }
      n = poller_.Wait(events.data(), options_.max_events, timeout_ms);
    }
    if (n == 0) continue;  // gave the role up: take the queued work
    Count(&WorkerCounters::epoll_waits);
    Count(&WorkerCounters::events, static_cast<uint64_t>(n));
    // Keep the first event; every other one goes to the ready queue, where
    // any free thread can take it, and the role is given up, before a
    // single handler runs. The events are disarmed (EPOLLONESHOT): the next
    // leader cannot receive them again. (`handed` holds only kEvent items.)
    for (int i = 1; i < n; ++i) handed[i - 1] = EventItem(events[i]);
    const int woken = scheduler_.Handoff(running, handed.data(), n - 1);
    Count(&WorkerCounters::handed_off, static_cast<uint64_t>(n - 1));
    Count(&WorkerCounters::promotions, static_cast<uint64_t>(woken));
    Dispatch(events[0].data.u64, events[0].events);
  }
  // Tasks accepted before Stop() are run, not dropped.
  RunTasks();
  SetCurrentWorker(nullptr);
}

void EventLoop::RunItem(const ReadyItem& item) {
  if (item.kind == WorkKind::kEvent) {
    Dispatch(item.data, item.events);
    return;
  }
  // Only a deferred handshake step carries readiness (the events it was
  // deferred with); every other kind leaves `events` zero.
  io_->Serve(item.slot, item.kind, item.events, item.round);  // claimed
}

void EventLoop::Dispatch(uint64_t data, uint32_t events) {
  if (data & kInternalTag) {
    if (data & kResolverSourceTag) {
      resolver_.HandleEvent(data, events);  // a c-ares socket
      return;
    }
    HandleInternal(data & ~kInternalTag);
    return;
  }
  Slot* slot = table_.Lookup(IndexOfId(data));
  if (slot == nullptr) {
    Count(&WorkerCounters::stale_events);
    return;
  }
  switch (ConnectionTable::TryClaim(slot, GenerationOfId(data))) {
    case ClaimResult::kStale:
      // The connection this event was armed for is gone; its slot (and
      // maybe its fd number) now belongs to another one.
      Count(&WorkerCounters::stale_events);
      return;
    case ClaimResult::kBusy:
      // Another thread owns it; kPending makes that thread look again.
      Count(&WorkerCounters::busy_events);
      return;
    case ClaimResult::kClaimed:
      slot->owner.armed = false;  // ONESHOT: delivering it disarmed the fd
      io_->Serve(slot, events);
      return;
  }
}

void EventLoop::HandleInternal(uint64_t source) {
  if (source == kWakeSource) {
    uint64_t count;
    (void)!::read(wake_.get(), &count, sizeof(count));
    RunTasks();
    // The read may have swallowed Stop()'s wake-up while another worker
    // already holds the leader role and is about to block in epoll_wait:
    // once stopping, keep the eventfd readable so every later epoll_wait
    // returns and its caller reaches the gate and exits. (Found by the Spin
    // model, docs/model.md.)
    if (stopping()) Wake();
    poller_.ArmInternal(wake_.get(), /*add=*/false, kWakeSource);
    return;
  }
  if (source == kTimerSource) {
    const int ran = timers_.RunDue();
    Count(&WorkerCounters::tasks, static_cast<uint64_t>(ran));
    poller_.ArmInternal(timers_.fd(), /*add=*/false, kTimerSource);
    return;
  }
  acceptor_->HandleEvent(source);
}

void EventLoop::RunTasks() {
  std::vector<std::function<void()>> tasks;
  {
    MutexLock lock(&task_mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
  Count(&WorkerCounters::tasks, tasks.size());
}

bool EventLoop::Post(std::function<void()> task) {
  bool was_empty;
  {
    MutexLock lock(&task_mu_);
    if (stopping()) return false;
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // Only the first task of a batch pays for the wake-up; the thread that
  // drains the queue takes all of them.
  if (was_empty) Wake();
  return true;
}

uint64_t EventLoop::AddTimer(int64_t delay_ns, int64_t period_ns,
                             std::function<void()> fn, TimerKind kind) {
  if (stopping()) return 0;
  return timers_.Add(net::DeadlineAfter(net::MonotonicNanos(), delay_ns),
                     period_ns, std::move(fn), kind);
}

bool EventLoop::BeginStop() {
  MutexLock lock(&task_mu_);
  if (stopping_.load(std::memory_order_relaxed)) return false;
  stopping_.store(true, std::memory_order_release);
  return true;
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void EventLoop::DropTasks() {
  MutexLock lock(&task_mu_);
  tasks_.clear();
}

}  // namespace baton::internal
