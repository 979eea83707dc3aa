// Public API implementation: Reactor, backed by internal::ReactorCore.
#include "baton/reactor.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/reactor_core.h"
#include "lib/internal/socket_util.h"

namespace baton {
namespace internal {
namespace {

// How many reads one readiness event may take before the connection goes
// back to epoll, so one fast sender cannot starve the others on its thread.
constexpr int kMaxReadsPerEvent = 16;
// Accepts per listener event, for the same reason.
constexpr int kMaxAcceptsPerEvent = 64;
// After running out of descriptors, the listener rests this long before it
// is re-armed, so exhaustion cannot turn into a busy loop.
constexpr int64_t kAcceptBackoffNs = 50 * 1000 * 1000;

// What a worker thread knows about itself.
struct WorkerContext {
  ReactorCore* core = nullptr;
  int index = 0;
  std::unique_ptr<char[]> read_buffer;
  size_t read_buffer_size = 0;
  // Connections served in this batch and kept claimed for a re-read.
  std::vector<Slot*> deferred;
  std::vector<Slot*> rereading;
};

thread_local WorkerContext* tls_worker = nullptr;

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", std::strerror(err)));
}

// epoll_ctl, retried on EINTR. Linux returns EINTR from epoll_ctl only when
// a fatal signal interrupts its (killable) lock wait, before anything
// changed, so retrying is always right; without it, a re-arm that failed
// this way closed a healthy connection and an internal one crashed the
// PCHECK. The loop costs nothing unless the call fails; tests/fault injects
// the error.
int EpollCtl(int epfd, int op, int fd, epoll_event* event) {
  int r;
  do {
    r = ::epoll_ctl(epfd, op, fd, event);
  } while (r != 0 && errno == EINTR);
  return r;
}

void ResetOwnerFields(Slot* slot) {
  slot->fd = -1;
  slot->handler = nullptr;
  slot->registered = false;
  slot->peer_closed = false;
  slot->closing = false;
  slot->lingering = false;
  slot->user_paused = false;
  slot->hwm_paused = false;
  slot->had_backlog = false;
  slot->aborting = false;
  slot->opened = false;
  slot->closed = false;
  slot->corked = false;
  slot->write_error = 0;
  slot->linger_timer = 0;
  slot->speculation = 1;
  slot->speculation_skips = 0;
}

}  // namespace

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
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      table_(options.max_connections),
      counters_(new WorkerCounters[options.threads + 1]),
      num_workers_(options.threads) {
  PCHECK(epoll_.valid()) << "epoll_create1";
  PCHECK(wake_.valid()) << "eventfd";
  epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = kInternalTag | kWakeSource;
  PCHECK(EpollCtl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) == 0);
  ev.data.u64 = kInternalTag | kTimerSource;
  PCHECK(EpollCtl(epoll_.get(), EPOLL_CTL_ADD, timers_.fd(), &ev) == 0);
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
    const absl::Duration period = std::clamp(
        shortest / 4, absl::Milliseconds(10), absl::Seconds(1));
    AddTimer(absl::ToInt64Nanoseconds(period),
             absl::ToInt64Nanoseconds(period), [this] { SweepIdle(); });
  }
}

ReactorCore::~ReactorCore() {
  Stop();
  Wait();
}

WorkerCounters& ReactorCore::counters() {
  if (tls_worker != nullptr && tls_worker->core == this) {
    return counters_[tls_worker->index];
  }
  return counters_[num_workers_];
}

void ReactorCore::Add(std::atomic<uint64_t> WorkerCounters::*field,
                      uint64_t n) {
  if (tls_worker != nullptr && tls_worker->core == this) {
    // Only this thread writes its counters: no locked instruction needed.
    std::atomic<uint64_t>& c = counters_[tls_worker->index].*field;
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  } else {
    (counters_[num_workers_].*field).fetch_add(n, std::memory_order_relaxed);
  }
}

bool ReactorCore::InReactorThread() const {
  return tls_worker != nullptr && tls_worker->core == this;
}

// ---------------------------------------------------------------------------
// Lifecycle

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
    for (auto& listener : listeners_) ::shutdown(listener->fd.get(), SHUT_RDWR);
  }
  gate_.Shutdown();
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void ReactorCore::Drain() {
  {
    MutexLock lock(&listeners_mu_);
    if (draining_.exchange(1, std::memory_order_acq_rel) != 0) return;
    // As in Stop: shutdown, not close; HandleListener sees draining() and
    // leaves the listener disarmed.
    for (auto& listener : listeners_) ::shutdown(listener->fd.get(), SHUT_RDWR);
  }
  // A connection whose slot this scan misses is closed by its opener:
  // see OpenConnection.
  const uint32_t end = table_.high_water();
  for (uint32_t i = 0; i < end; ++i) {
    Slot* slot = table_.Lookup(i);
    if (slot == nullptr) continue;
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    if (!(FlagsOf(state) & kLive)) continue;
    Request(ConnectionId{MakeId(GenerationOf(state), i)}, kCloseRequested);
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
  CloseAllAfterJoin();
  joined_ = true;
}

void ReactorCore::CloseAllAfterJoin() {
  {
    // Tasks still queued can only exist if the workers never ran.
    MutexLock lock(&task_mu_);
    tasks_.clear();
  }
  timers_.Clear();
  const absl::Status reason =
      absl::CancelledError("reactor stopped");
  for (uint32_t i = 0; i < table_.high_water(); ++i) {
    Slot* slot = table_.Lookup(i);
    if (slot == nullptr) continue;
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    if (!(FlagsOf(state) & kLive)) continue;
    // Every worker has exited, so this thread owns every connection now;
    // take the claim formally so Free's invariant holds.
    slot->state.fetch_or(kClaimed, std::memory_order_acq_rel);
    if (slot->handler != nullptr && slot->opened) {
      slot->closed = true;
      Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
      slot->handler->OnClose(conn, reason);
    }
    if (slot->fd >= 0) {
      {
        // Last chance for queued bytes; never blocks.
        MutexLock out_lock(&slot->out_mu);
        if (slot->out != nullptr) {
          size_t sent = 0;
          int error = 0;
          slot->out->Flush(slot->fd, &sent, &error);
        }
      }
      ::close(slot->fd);
    }
    delete slot->handler;
    MutexLock out_lock(&slot->out_mu);
    slot->out.reset();
    slot->out_bytes.store(0, std::memory_order_relaxed);
    ResetOwnerFields(slot);
    table_.Free(slot);
    Add(&WorkerCounters::closes);
  }
  MutexLock lock(&listeners_mu_);
  for (auto& listener : listeners_) listener->fd.Reset();
}

// ---------------------------------------------------------------------------
// The leader/followers loop

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
    int n;
    do {
      n = ::epoll_wait(epoll_.get(), events.data(), options_.max_events, -1);
    } while (n < 0 && errno == EINTR);
    PCHECK(n >= 0) << "epoll_wait";
    // Hand the role on before running any handler, so a slow handler never
    // stops the reactor. The events taken are disarmed (EPOLLONESHOT): the
    // new leader cannot receive them again.
    if (gate_.PromoteSuccessor()) Add(&WorkerCounters::promotions);
    Add(&WorkerCounters::epoll_waits);
    Add(&WorkerCounters::events, static_cast<uint64_t>(n));
    for (int i = 0; i < n; ++i) Dispatch(events[i]);
    RunDeferred();
  }
  // Tasks accepted before Stop() are run, not dropped.
  RunTasks();
  RunDeferred();
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
      Service(slot, event.events);
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
    RearmInternal(wake_.get(), kWakeSource);
    return;
  }
  if (source == kTimerSource) {
    const int ran = timers_.RunDue();
    Add(&WorkerCounters::tasks, static_cast<uint64_t>(ran));
    RearmInternal(timers_.fd(), kTimerSource);
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

void ReactorCore::RearmInternal(int fd, uint64_t source) {
  epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = kInternalTag | source;
  PCHECK(EpollCtl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) == 0)
      << "re-arming internal source " << source;
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

// ---------------------------------------------------------------------------
// Accepting

absl::StatusOr<int> ReactorCore::Listen(const ListenOptions& options,
                                        HandlerFactory factory) {
  if (!factory) return absl::InvalidArgumentError("no handler factory");
  absl::StatusOr<ScopedFd> fd = CreateListener(
      options.address, options.port, options.backlog, options.reuse_port);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<int> port = LocalPort(fd->get());
  if (!port.ok()) return port.status();
  if (options.defer_accept_seconds < 0) {
    return absl::InvalidArgumentError("defer_accept_seconds must be >= 0");
  }
  if (options.defer_accept_seconds > 0 &&
      ::setsockopt(fd->get(), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                   &options.defer_accept_seconds,
                   sizeof(options.defer_accept_seconds)) != 0) {
    return ErrnoStatus("setsockopt(TCP_DEFER_ACCEPT)", errno);
  }

  MutexLock lock(&listeners_mu_);
  if (stopping() || draining()) {
    return absl::FailedPreconditionError("reactor stopped or draining");
  }
  auto listener = std::make_unique<Listener>();
  listener->fd = std::move(*fd);
  listener->factory = std::move(factory);
  listener->source = kListenerSourceBase + listeners_.size();
  listener->data_first = options.defer_accept_seconds > 0;
  epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = kInternalTag | listener->source;
  if (EpollCtl(epoll_.get(), EPOLL_CTL_ADD, listener->fd.get(), &ev) != 0) {
    return ErrnoStatus("epoll_ctl(ADD listener)", errno);
  }
  listeners_.push_back(std::move(listener));
  return *port;
}

void ReactorCore::HandleListener(Listener* listener) {
  for (int i = 0; i < kMaxAcceptsPerEvent && !stopping(); ++i) {
    const int fd = ::accept4(listener->fd.get(), nullptr, nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors or memory: refuse one waiting client cleanly
        // and rest before accepting again instead of spinning on the error.
        if (ShedOneConnection(listener)) Add(&WorkerCounters::rejected);
        LOG_EVERY_N(WARNING, 1000)
            << "accept: " << std::strerror(err) << "; backing off ("
            << google::COUNTER << " times)";
        const uint64_t source = listener->source;
        const int listen_fd = listener->fd.get();
        AddTimer(kAcceptBackoffNs, 0, [this, listen_fd, source] {
          if (!stopping() && !draining()) RearmInternal(listen_fd, source);
        });
        return;
      }
      if (err == EINVAL && (stopping() || draining())) {
        return;  // shut down by Stop() or Drain(): stays disarmed
      }
      PLOG(ERROR) << "accept4";
      break;
    }
    Add(&WorkerCounters::accepts);
    Slot* slot = table_.Allocate();
    if (slot == nullptr) {
      // max_connections reached.
      ::close(fd);
      Add(&WorkerCounters::rejected);
      continue;
    }
    OpenConnection(slot, fd, listener->factory,
                   {/*accepted=*/true, /*readable=*/listener->data_first});
  }
  if (!stopping() && !draining()) {
    RearmInternal(listener->fd.get(), listener->source);
  }
}

bool ReactorCore::ShedOneConnection(Listener* listener) {
  MutexLock lock(&reserve_mu_);
  if (!reserve_fd_.valid()) return false;
  reserve_fd_.Reset();
  const int fd = ::accept4(listener->fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return fd >= 0;
}

absl::StatusOr<ConnectionId> ReactorCore::Adopt(int fd,
                                                HandlerFactory factory) {
  if (!factory) {
    ::close(fd);
    return absl::InvalidArgumentError("no handler factory");
  }
  if (absl::Status s = MakeNonBlockingCloexec(fd); !s.ok()) {
    ::close(fd);
    return s;
  }
  Slot* slot = table_.Allocate();
  if (slot == nullptr) {
    ::close(fd);
    Add(&WorkerCounters::rejected);
    return absl::ResourceExhaustedError("max_connections reached");
  }
  // The slot is claimed by this thread; the claim travels with the task to
  // a reactor thread, where OnOpen runs.
  slot->fd = fd;
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  if (!Post([this, slot, factory = std::move(factory)] {
        OpenConnection(slot, slot->fd, factory, OpenMode{});
      })) {
    // Stopping: the connection is closed with the rest after the join.
    return absl::FailedPreconditionError("reactor stopped");
  }
  return id;
}

// ---------------------------------------------------------------------------
// Serving a connection (the caller holds the claim)

void ReactorCore::OpenConnection(Slot* slot, int fd,
                                 const HandlerFactory& factory,
                                 OpenMode mode) {
  ResetOwnerFields(slot);
  slot->fd = fd;
  slot->last_activity_ms.store(CoarseMonotonicMillis(),
                               std::memory_order_relaxed);
  if (!mode.accepted) SetNoDelay(fd);
  std::unique_ptr<ConnectionHandler> handler = factory();
  if (handler == nullptr) {
    LOG_EVERY_N(ERROR, 1000) << "handler factory returned null; closing";
    CloseNow(slot, absl::InternalError("no handler"));
    return;
  }
  slot->handler = handler.release();
  slot->opened = true;
  Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
  slot->handler->OnOpen(conn);
  if (slot->aborting) {
    CloseNow(slot, absl::AbortedError("aborted by handler"));
    return;
  }
  // Read draining_ with an RMW: RMWs on one variable are totally ordered.
  // If ours comes first, Drain's exchange reads its release and the scan
  // that follows sees this slot live; if Drain's comes first, we see it.
  // (A fence-based Dekker would do too, but ThreadSanitizer ignores fences.)
  if (draining_.fetch_or(0, std::memory_order_acq_rel) != 0) {
    slot->closing = true;
  }
  // Not yet registered: Service's first Rearm adds it to epoll, unless the
  // waiting request was answered and the connection closed first.
  Service(slot, mode.readable ? static_cast<uint32_t>(EPOLLIN) : 0u);
}

void ReactorCore::Service(Slot* slot, uint32_t revents, bool speculative,
                          Defer defer) {
  for (;;) {
    size_t bytes_read = 0;
    if (!ServeOnce(slot, revents, &bytes_read)) return;
    if (speculative) {
      speculative = false;
      Add(&WorkerCounters::speculative_reads);
      if (bytes_read > 0) {
        Add(&WorkerCounters::speculative_hits);
        if (slot->speculation < 3) ++slot->speculation;
      } else {
        slot->speculation = 0;
        slot->speculation_skips = 0;
      }
    }
    if (bytes_read > 0 && defer == Defer::kAllowed && MayDefer(slot)) {
      // Keep the claim: the connection is read again after this batch, and
      // re-armed only if that finds nothing (see RunDeferred).
      tls_worker->deferred.push_back(slot);
      return;
    }
    Rearm(slot);
    if (!slot->registered) return;  // Rearm failed and closed it
    if (ConnectionTable::Release(slot)) return;
    // Something arrived while we held the claim: an event on another thread
    // (dropped there, and disarmed by the kernel), a foreign Write or a
    // request. Look at everything again; a read that finds nothing is cheap.
    revents = EPOLLIN | EPOLLOUT;
  }
}

bool ReactorCore::MayDefer(Slot* slot) {
  if (options_.speculative_rounds <= 0 || !InReactorThread() ||
      !slot->registered || slot->closing || slot->lingering ||
      slot->peer_closed || slot->user_paused || slot->hwm_paused ||
      slot->write_error != 0 ||
      slot->out_bytes.load(std::memory_order_relaxed) != 0) {
    return false;
  }
  if (slot->speculation == 0) {
    // Its last re-read found nothing: re-arm at once for a while, then give
    // speculation another chance (the peer's pace may have changed).
    if (++slot->speculation_skips >= 8) slot->speculation = 1;
    return false;
  }
  return true;
}

void ReactorCore::RunDeferred() {
  WorkerContext* ctx = tls_worker;
  for (int round = 0;
       round < options_.speculative_rounds && !ctx->deferred.empty();
       ++round) {
    ctx->rereading.swap(ctx->deferred);
    for (Slot* slot : ctx->rereading) {
      Service(slot, EPOLLIN, /*speculative=*/true);
    }
    ctx->rereading.clear();
  }
  // Out of rounds: hand the rest back to epoll.
  ctx->rereading.swap(ctx->deferred);
  for (Slot* slot : ctx->rereading) {
    Service(slot, 0, /*speculative=*/false, Defer::kNever);
  }
  ctx->rereading.clear();
}

bool ReactorCore::ServeOnce(Slot* slot, uint32_t revents, size_t* bytes_read) {
  const uint32_t requests = ConnectionTable::TakeRequests(slot);
  if (requests & kAbortRequested) {
    CloseNow(slot, absl::AbortedError("aborted"));
    return false;
  }
  if (requests & kTimedOut) {
    if (slot->out_bytes.load(std::memory_order_relaxed) > 0 &&
        options_.write_timeout > absl::ZeroDuration()) {
      Add(&WorkerCounters::write_timeouts);
      CloseNow(slot, absl::DeadlineExceededError("write timeout"));
    } else {
      Add(&WorkerCounters::idle_timeouts);
      CloseNow(slot, absl::DeadlineExceededError("idle timeout"));
    }
    return false;
  }
  if (requests & kCloseRequested) slot->closing = true;

  if (revents & EPOLLERR) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(slot->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    CloseNow(slot, ErrnoStatus("socket error", err != 0 ? err : ECONNRESET));
    return false;
  }
  const bool want_read =
      !slot->peer_closed &&
      (slot->lingering ||
       (!slot->closing && !slot->user_paused && !slot->hwm_paused));
  if (want_read && (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
    if (!ReadInput(slot, revents, bytes_read)) return false;
  }
  if (slot->write_error != 0) {
    CloseNow(slot, ErrnoStatus("send", slot->write_error));
    return false;
  }
  if (!FlushOutput(slot)) return false;
  if (slot->closing && !slot->lingering &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    if (!FinishClose(slot)) return false;
  }
  if ((revents & EPOLLHUP) && slot->peer_closed &&
      slot->out_bytes.load(std::memory_order_relaxed) == 0) {
    // Both directions are gone and nothing is left to send.
    CloseNow(slot, absl::OkStatus());
    return false;
  }
  return true;
}

bool ReactorCore::ReadInput(Slot* slot, uint32_t revents,
                            size_t* bytes_read) {
  char* buffer = tls_worker->read_buffer.get();
  const size_t capacity = tls_worker->read_buffer_size;
  const bool track_activity = track_activity_;
  for (int round = 0; round < kMaxReadsPerEvent; ++round) {
    const ssize_t n = ::read(slot->fd, buffer, capacity);
    if (n > 0) {
      *bytes_read += static_cast<size_t>(n);
      Add(&WorkerCounters::bytes_read, static_cast<uint64_t>(n));
      if (track_activity) {
        slot->last_activity_ms.store(CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
      if (!slot->lingering) {
        Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
        slot->handler->OnData(conn, absl::string_view(buffer, n));
        if (slot->aborting) {
          CloseNow(slot, absl::AbortedError("aborted by handler"));
          return false;
        }
        if (slot->closing || slot->user_paused || slot->write_error != 0) {
          break;
        }
        if (slot->out_bytes.load(std::memory_order_relaxed) >
            options_.output_high_water) {
          slot->hwm_paused = true;
          break;
        }
      }
      // A short read drained the socket, unless the peer also shut down, in
      // which case the next read returns its EOF. Level triggering brings
      // us back for anything that arrives later.
      if (static_cast<size_t>(n) < capacity &&
          !(revents & (EPOLLRDHUP | EPOLLHUP))) {
        break;
      }
      continue;
    }
    if (n == 0) {
      slot->peer_closed = true;
      if (slot->lingering) {
        CloseNow(slot, absl::OkStatus());
        return false;
      }
      Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
      slot->handler->OnPeerClosed(conn);
      if (slot->aborting) {
        CloseNow(slot, absl::AbortedError("aborted by handler"));
        return false;
      }
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    CloseNow(slot, ErrnoStatus("read", errno));
    return false;
  }
  return true;
}

bool ReactorCore::FlushOutput(Slot* slot) {
  if (slot->corked) {
    // A WriteHint::kMoreFollows send is held by the kernel. Usually queued
    // output (a file body) follows and its send pushes both; if nothing
    // followed, push it now (setting TCP_NODELAY sends pending frames).
    slot->corked = false;
    if (slot->out_bytes.load(std::memory_order_acquire) == 0) {
      SetNoDelay(slot->fd);
    }
  }
  if (slot->out_bytes.load(std::memory_order_acquire) == 0) {
    if (!slot->had_backlog) return true;
  } else {
    size_t sent = 0;
    int error = 0;
    OutputQueue::FlushResult result;
    {
      MutexLock lock(&slot->out_mu);
      if (slot->out == nullptr) return true;
      result = slot->out->Flush(slot->fd, &sent, &error);
      if (result == OutputQueue::FlushResult::kDrained) {
        slot->out.reset();  // idle connections keep no buffer
        slot->out_bytes.store(0, std::memory_order_relaxed);
      } else {
        slot->out_bytes.store(slot->out->bytes(), std::memory_order_relaxed);
      }
    }
    if (sent > 0) {
      Add(&WorkerCounters::bytes_written, sent);
      if (track_activity_) {
        slot->last_activity_ms.store(CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
    }
    if (result == OutputQueue::FlushResult::kError) {
      CloseNow(slot, ErrnoStatus("send", error));
      return false;
    }
    if (result == OutputQueue::FlushResult::kBlocked) {
      slot->had_backlog = true;
      return true;
    }
  }
  // Drained after a backlog.
  slot->had_backlog = false;
  if (slot->hwm_paused &&
      slot->out_bytes.load(std::memory_order_relaxed) <=
          options_.output_high_water / 2) {
    slot->hwm_paused = false;
  }
  if (!slot->closing && !slot->lingering) {
    Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
    slot->handler->OnDrained(conn);
    if (slot->aborting) {
      CloseNow(slot, absl::AbortedError("aborted by handler"));
      return false;
    }
  }
  return true;
}

bool ReactorCore::FinishClose(Slot* slot) {
  int unread = 0;
  if (slot->peer_closed || ::ioctl(slot->fd, FIONREAD, &unread) != 0 ||
      unread == 0) {
    // Nothing unread: close() sends a FIN and the peer gets every byte.
    CloseNow(slot, absl::OkStatus());
    return false;
  }
  // Closing with unread input would send a reset that can destroy the reply
  // in flight. Shut our side, drain and discard until the peer's EOF or the
  // linger timeout.
  ::shutdown(slot->fd, SHUT_WR);
  slot->lingering = true;
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  slot->linger_timer =
      AddTimer(absl::ToInt64Nanoseconds(options_.linger_timeout), 0,
               [this, id] { Request(id, kAbortRequested); });
  return true;
}

void ReactorCore::Rearm(Slot* slot) {
  size_t pending = slot->out_bytes.load(std::memory_order_acquire);
  if (slot->hwm_paused && pending <= options_.output_high_water / 2) {
    slot->hwm_paused = false;
  }
  const bool want_read =
      !slot->peer_closed &&
      (slot->lingering ||
       (!slot->closing && !slot->user_paused && !slot->hwm_paused));
  epoll_event ev = {};
  uint32_t interest = EPOLLONESHOT;
  if (want_read) interest |= EPOLLIN | EPOLLRDHUP;
  if (pending > 0) interest |= EPOLLOUT;
  ev.events = interest;
  ev.data.u64 = ConnectionTable::IdOf(slot);
  const int op = slot->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (EpollCtl(epoll_.get(), op, slot->fd, &ev) != 0) {
    const int err = errno;
    LOG(ERROR) << "epoll_ctl(" << (slot->registered ? "MOD" : "ADD")
               << ", fd " << slot->fd << "): " << std::strerror(err);
    CloseNow(slot, ErrnoStatus("epoll_ctl", err));
    return;
  }
  if (slot->registered) Add(&WorkerCounters::rearms);
  slot->registered = true;
}

void ReactorCore::CloseNow(Slot* slot, const absl::Status& reason) {
  if (slot->linger_timer != 0) timers_.Cancel(slot->linger_timer);
  if (slot->handler != nullptr && slot->opened) {
    slot->closed = true;
    Connection conn(this, slot, ConnectionId{ConnectionTable::IdOf(slot)});
    slot->handler->OnClose(conn, reason);
  }
  // No EPOLL_CTL_DEL: closing the last descriptor of the socket removes it
  // from epoll, and saves a syscall per connection. If the application
  // dup()ed Connection::fd(), the registration outlives this close; the
  // most it can deliver is one event (ONESHOT) carrying this connection's
  // id, which the generation check drops as stale.
  if (slot->fd >= 0) ::close(slot->fd);
  delete slot->handler;
  ResetOwnerFields(slot);
  {
    // Under out_mu, so a concurrent Reactor::Write either lands before the
    // queue is dropped or sees the new generation and gives up.
    MutexLock lock(&slot->out_mu);
    slot->out.reset();
    slot->out_bytes.store(0, std::memory_order_relaxed);
    table_.Free(slot);
  }
  Add(&WorkerCounters::closes);
}

void ReactorCore::SweepIdle() {
  const int64_t now = CoarseMonotonicMillis();
  // Zero disables a limit; a queued backlog is judged by write_timeout
  // when one is set.
  const int64_t idle_limit =
      options_.idle_timeout > absl::ZeroDuration()
          ? absl::ToInt64Milliseconds(options_.idle_timeout)
          : INT64_MAX;
  const int64_t write_limit =
      options_.write_timeout > absl::ZeroDuration()
          ? absl::ToInt64Milliseconds(options_.write_timeout)
          : idle_limit;
  const uint32_t end = table_.high_water();
  for (uint32_t i = 0; i < end; ++i) {
    Slot* slot = table_.Lookup(i);
    if (slot == nullptr) continue;
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    // A claimed connection is being served right now: not idle.
    if ((FlagsOf(state) & (kLive | kClaimed)) != kLive) continue;
    const int64_t limit =
        slot->out_bytes.load(std::memory_order_relaxed) > 0 ? write_limit
                                                             : idle_limit;
    if (now - slot->last_activity_ms.load(std::memory_order_relaxed) < limit) {
      continue;
    }
    Request(ConnectionId{MakeId(GenerationOf(state), i)}, kTimedOut);
  }
}

// ---------------------------------------------------------------------------
// Foreign-thread operations

bool ReactorCore::Kick(ConnectionId id, uint32_t request) {
  Slot* slot = table_.Lookup(IndexOfId(id.value));
  if (slot == nullptr) return false;
  switch (ConnectionTable::TryClaim(slot, GenerationOfId(id.value), request)) {
    case ClaimResult::kStale:
      return false;
    case ClaimResult::kBusy:
      return true;  // the owner sees kPending and serves it
    case ClaimResult::kClaimed:
      // We own it but are not the place to run its handler: hand the claim
      // to a reactor thread. If the reactor is stopping, the connection is
      // closed after the join instead.
      Post([this, slot] { Service(slot, 0); });
      return true;
  }
  return false;
}

bool ReactorCore::Request(ConnectionId id, uint32_t request) {
  return Kick(id, request);
}

bool ReactorCore::Write(ConnectionId id, absl::string_view data) {
  Slot* slot = table_.Lookup(IndexOfId(id.value));
  if (slot == nullptr) return false;
  {
    MutexLock lock(&slot->out_mu);
    const uint64_t state = slot->state.load(std::memory_order_acquire);
    if (GenerationOf(state) != GenerationOfId(id.value) ||
        !(FlagsOf(state) & kLive)) {
      return false;
    }
    if (slot->out == nullptr) slot->out = std::make_unique<OutputQueue>();
    slot->out->Append(data);
    slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  }
  Kick(id, 0);
  return true;
}

void ReactorCore::OwnerWrite(Slot* slot, absl::string_view data, bool more) {
  if (data.empty() || slot->closed || slot->closing || slot->lingering ||
      slot->write_error != 0) {
    return;
  }
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr || slot->out->empty()) {
    // Nothing queued: send directly, no copy. The lock keeps a foreign
    // Write from slipping its bytes between ours.
    const int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0);
    slot->corked = more;
    ssize_t n;
    do {
      n = ::send(slot->fd, data.data(), data.size(), flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        slot->write_error = errno;
        return;
      }
      n = 0;
    }
    if (n > 0) {
      Add(&WorkerCounters::bytes_written, static_cast<uint64_t>(n));
      if (track_activity_) {
        slot->last_activity_ms.store(CoarseMonotonicMillis(),
                                     std::memory_order_relaxed);
      }
    }
    if (static_cast<size_t>(n) == data.size()) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (slot->out == nullptr) slot->out = std::make_unique<OutputQueue>();
  slot->out->Append(data);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  slot->had_backlog = true;
}

bool ReactorCore::OwnerSendFile(Slot* slot, int file_fd, int64_t offset,
                                int64_t length, bool transfer) {
  ScopedFd file(transfer ? file_fd : -1);
  if (slot->closed || slot->closing || slot->lingering ||
      slot->write_error != 0) {
    return false;
  }
  if (length <= 0) return true;
  if (!transfer) {
    file.Reset(::fcntl(file_fd, F_DUPFD_CLOEXEC, 0));
    if (!file.valid()) return false;
  }
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr) slot->out = std::make_unique<OutputQueue>();
  slot->out->AppendFile(std::move(file), offset, length);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  return true;
}

void ReactorCore::OwnerAbort(Slot* slot) { slot->aborting = true; }

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

}  // namespace internal

// ---------------------------------------------------------------------------
// Reactor: argument checking, then straight to the core.

absl::StatusOr<std::unique_ptr<Reactor>> Reactor::Create(
    const ReactorOptions& options) {
  ReactorOptions o = options;
  if (o.threads < 0 || o.threads > 1024) {
    return absl::InvalidArgumentError("threads must be in 0..1024");
  }
  if (o.threads == 0) {
    o.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  if (o.max_events < 1 || o.max_events > 4096) {
    return absl::InvalidArgumentError("max_events must be in 1..4096");
  }
  if (o.max_connections < 1 || o.max_connections > (size_t{1} << 31)) {
    return absl::InvalidArgumentError("max_connections must be in 1..2^31");
  }
  if (o.idle_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout must not be negative");
  }
  if (o.write_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("write_timeout must not be negative");
  }
  if (o.linger_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("linger_timeout must not be negative");
  }
  if (o.speculative_rounds < 0 || o.speculative_rounds > 64) {
    return absl::InvalidArgumentError("speculative_rounds must be in 0..64");
  }
  if (o.output_high_water < 1) {
    return absl::InvalidArgumentError("output_high_water must be positive");
  }
  if (o.read_buffer_size < 512 || o.read_buffer_size > (size_t{64} << 20)) {
    return absl::InvalidArgumentError(
        "read_buffer_size must be in 512..64 MiB");
  }
  // sendfile(2) has no MSG_NOSIGNAL: a peer that vanished mid-file would
  // raise SIGPIPE. Ignore it unless the application installed a handler.
  struct sigaction current;
  if (sigaction(SIGPIPE, nullptr, &current) == 0 &&
      current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  return std::unique_ptr<Reactor>(
      new Reactor(std::make_unique<internal::ReactorCore>(o)));
}

Reactor::Reactor(std::unique_ptr<internal::ReactorCore> core)
    : core_(std::move(core)) {
  core_->set_owner(this);
}

Reactor::~Reactor() {
  core_->Stop();
  core_->Wait();
}

absl::StatusOr<int> Reactor::Listen(const ListenOptions& options,
                                    HandlerFactory factory) {
  return core_->Listen(options, std::move(factory));
}

absl::StatusOr<ConnectionId> Reactor::Adopt(int fd, HandlerFactory factory) {
  return core_->Adopt(fd, std::move(factory));
}

absl::Status Reactor::Start() { return core_->Start(); }
void Reactor::Stop() { core_->Stop(); }
void Reactor::Wait() { core_->Wait(); }
bool Reactor::stopping() const { return core_->stopping(); }
bool Reactor::Post(std::function<void()> task) {
  return core_->Post(std::move(task));
}

TimerId Reactor::RunAfter(absl::Duration delay, std::function<void()> fn) {
  return core_->AddTimer(absl::ToInt64Nanoseconds(delay), 0, std::move(fn));
}

TimerId Reactor::RunEvery(absl::Duration period, std::function<void()> fn) {
  const int64_t ns = std::max<int64_t>(absl::ToInt64Nanoseconds(period), 1);
  return core_->AddTimer(ns, ns, std::move(fn));
}

bool Reactor::CancelTimer(TimerId id) { return core_->CancelTimer(id); }

bool Reactor::Write(ConnectionId id, absl::string_view data) {
  return core_->Write(id, data);
}
bool Reactor::Close(ConnectionId id) {
  return core_->Request(id, internal::kCloseRequested);
}
bool Reactor::Abort(ConnectionId id) {
  return core_->Request(id, internal::kAbortRequested);
}

void Reactor::Drain() { core_->Drain(); }

size_t Reactor::connection_count() const { return core_->connection_count(); }
ReactorCounters Reactor::Counters() const { return core_->Counters(); }
std::vector<ReactorCounters> Reactor::ThreadCounters() const {
  return core_->ThreadCounters();
}
bool Reactor::InReactorThread() const { return core_->InReactorThread(); }
const ReactorOptions& Reactor::options() const { return core_->options(); }

}  // namespace baton
