// Internal: ReactorCore setup, Start / Stop / Drain / Wait, and counters.
#include "lib/internal/reactor_core.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace baton::internal {

ReactorCounters WorkerCounters::Snapshot() const {
  ReactorCounters c;
#define BATON_SNAPSHOT_COUNTER(name, what) \
  c.name = name.load(std::memory_order_relaxed);
  BATON_REACTOR_COUNTERS(BATON_SNAPSHOT_COUNTER)
#undef BATON_SNAPSHOT_COUNTER
  return c;
}

ReactorCore::ReactorCore(const ReactorOptions& options)
    : options_(options),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      table_(options.max_connections),
      counters_(new WorkerCounters[options.threads + 1]),
      num_workers_(options.threads) {
  PCHECK(wake_.valid()) << "eventfd";
  poller_.ArmInternal(wake_.get(), /*add=*/true, kWakeSource);
  poller_.ArmInternal(timers_.fd(), /*add=*/true, kTimerSource);
  {
    MutexLock lock(&reserve_mu_);
    reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  if (track_activity_) {
    // Sweep four times per (shortest) timeout: a connection is closed
    // between 1 and 1.25 timeouts after it went quiet.
    absl::Duration shortest = absl::InfiniteDuration();
    for (absl::Duration t : {options_.idle_timeout, options_.write_timeout}) {
      if (t > absl::ZeroDuration()) shortest = std::min(shortest, t);
    }
    const absl::Duration period =
        std::clamp(shortest / 4, absl::Milliseconds(10), absl::Seconds(1));
    AddTimer(absl::ToInt64Nanoseconds(period), absl::ToInt64Nanoseconds(period),
             [this] { SweepIdle(); });
  }
}

ReactorCore::~ReactorCore() {
  Stop();
  Wait();
}

void ReactorCore::Add(std::atomic<uint64_t> WorkerCounters::*field,
                      uint64_t n) {
  const WorkerContext* worker = CurrentWorker();
  if (worker != nullptr && worker->core == this) {
    // Only this thread writes its counters: no locked instruction needed.
    std::atomic<uint64_t>& c = counters_[worker->index].*field;
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    (counters_[num_workers_].*field).fetch_add(n, std::memory_order_relaxed);
  }
}

bool ReactorCore::InReactorThread() const {
  const WorkerContext* worker = CurrentWorker();
  return worker != nullptr && worker->core == this;
}

ReactorCounters ReactorCore::Counters() const {
  ReactorCounters total;
  for (int i = 0; i <= num_workers_; ++i) total += counters_[i].Snapshot();
  return total;
}

std::vector<ReactorCounters> ReactorCore::ThreadCounters() const {
  std::vector<ReactorCounters> out;
  for (int i = 0; i < num_workers_; ++i) out.push_back(counters_[i].Snapshot());
  return out;
}

absl::Status ReactorCore::Start() {
  MutexLock lock(&lifecycle_mu_);
  if (started_) return absl::FailedPreconditionError("reactor already started");
  if (stopping()) return absl::FailedPreconditionError("reactor stopped");
  started_ = true;
  threads_.reserve(num_workers_);
  for (int i = 0; i < num_workers_; ++i) {
    threads_.emplace_back(&ReactorCore::WorkerMain, this, i);
  }
  return absl::OkStatus();
}

void ReactorCore::Stop() {
  {
    MutexLock lock(&task_mu_);
    if (stopping_.load(std::memory_order_relaxed)) return;
    stopping_.store(true, std::memory_order_release);
  }
  {
    // Stop accepting now. shutdown() (not close) so that a thread inside a
    // listener's handler never sees its descriptor number reused; the
    // descriptors are closed after the workers are joined.
    MutexLock lock(&listeners_mu_);
    for (auto& listener : listeners_) {
      ::shutdown(listener->fd.get(), SHUT_RDWR);
      listener->unix_file.Remove();
    }
  }
  scheduler_.Shutdown();
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void ReactorCore::Drain() {
  {
    MutexLock lock(&listeners_mu_);
    if (draining_.exchange(1, std::memory_order_acq_rel) != 0) return;
    ShutListenersLocked();
  }
  // A connection whose slot this scan misses is closed by its opener:
  // see OpenConnection.
  const uint32_t end = table_.index_bound();
  for (uint32_t i = 0; i < end; ++i) {
    Slot* slot = table_.Lookup(i);
    if (slot == nullptr) continue;
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    if (!(FlagsOf(state) & kLive)) continue;
    Request(ConnectionId{MakeId(GenerationOf(state), i)}, kCloseRequested);
  }
}

void ReactorCore::StopAccepting() {
  MutexLock lock(&listeners_mu_);
  ShutListenersLocked();
}

void ReactorCore::ShutListenersLocked() {
  if (accepting_stopped_.exchange(true, std::memory_order_acq_rel)) return;
  // As in Stop: shutdown, not close; HandleListener sees
  // accepting_stopped() and leaves the listener disarmed.
  for (auto& listener : listeners_) {
    ::shutdown(listener->fd.get(), SHUT_RDWR);
    listener->unix_file.Remove();
  }
}

void ReactorCore::Wait() {
  CHECK(!InReactorThread())
      << "Reactor::Wait() and ~Reactor() must not run on a reactor thread";
  MutexLock lock(&lifecycle_mu_);
  if (joined_) return;
  if (!started_ && !stopping()) return;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  {
    // From here on Adopt refuses: the sweep below is the last one.
    MutexLock adopt_lock(&adopt_mu_);
    adopt_closed_ = true;
  }
  CloseAllAfterJoin();
  joined_ = true;
}

}  // namespace baton::internal
