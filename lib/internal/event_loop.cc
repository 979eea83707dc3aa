// Internal: the worker loop. Leader/followers hand-off around epoll_wait,
// dispatch of every event the leader takes, posted tasks and timers.
#include <glog/logging.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/internal/reactor_core.h"

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
  while (gate_.BecomeLeader()) {
    const int n = poller_.Wait(events.data(), options_.max_events, -1);
    // Hand the role on before running any handler, so a slow handler never
    // stops the reactor. The events taken are disarmed (EPOLLONESHOT): the
    // new leader cannot receive them again.
    if (gate_.PromoteSuccessor()) Add(&WorkerCounters::promotions);
    Add(&WorkerCounters::epoll_waits);
    Add(&WorkerCounters::events, static_cast<uint64_t>(n));
    for (int i = 0; i < n; ++i) Dispatch(events[i]);
    RunRereads();
  }
  // Tasks accepted before Stop() are run, not dropped.
  RunTasks();
  RunRereads();
  tls_worker = nullptr;
}

void ReactorCore::Dispatch(const epoll_event& event) {
  const uint64_t data = event.data.u64;
  if (data & kInternalTag) {
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
                               std::function<void()> fn) {
  if (stopping()) return 0;
  return timers_.Add(MonotonicNanos() + std::max<int64_t>(delay_ns, 0),
                     period_ns, std::move(fn));
}

}  // namespace baton::internal
