// Internal: ReactorCore, the composition root: construction and wiring of
// the components, Start / Stop / Drain / Wait.
#include "lib/internal/reactor_core.h"

#include <glog/logging.h>

#include <algorithm>

namespace baton::internal {

ReactorCore::ReactorCore(const ReactorOptions& options)
    : options_(options),
      num_workers_(options.threads),
      counters_(options.threads + options.tls_handshake_threads),
      resolver_(
          &poller_, &timers_, options.dns_servers,
          [this](uint64_t id) {
            requests_.Request(ConnectionId{id}, kTimerDue);
          },
          absl::ToInt64Nanoseconds(options.dns_cache_max_ttl),
          options.dns_cache_max_names),
      table_(options.max_connections),
      loop_(options_, poller_, scheduler_, table_, timers_, counters_,
            resolver_, &io_, &acceptor_),
      requests_(table_, scheduler_, counters_, &loop_, &io_, &output_),
      connection_timers_(timers_, counters_, &requests_, &lifetime_),
      lifetime_(this, options_, table_, timers_, counters_, &loop_, &requests_,
                &connection_timers_, &io_),
      input_(options_, scheduler_, counters_, &lifetime_),
      output_(options_, counters_, &lifetime_),
      connector_(table_, timers_, counters_, adopt_gate_, resolver_,
                 tls_contexts_, &loop_, &lifetime_, &connection_timers_, &io_),
      io_(options_, poller_, scheduler_, counters_,
          ConnectionIo::Parts{&lifetime_, &input_, &output_, &connector_,
                              &connection_timers_}),
      acceptor_(poller_, table_, counters_, adopt_gate_, &loop_, &lifetime_) {
  scheduler_.set_handshake_max_wait(
      absl::ToInt64Nanoseconds(options_.tls_handshake_max_wait));
  if (ConnectionLifetime::TracksActivity(options_)) {
    // Sweep four times per (shortest) timeout: a connection is closed
    // between 1 and 1.25 timeouts after it went quiet.
    absl::Duration shortest = absl::InfiniteDuration();
    for (absl::Duration t : {options_.idle_timeout, options_.write_timeout}) {
      if (t > absl::ZeroDuration()) shortest = std::min(shortest, t);
    }
    const absl::Duration period =
        std::clamp(shortest / 4, absl::Milliseconds(10), absl::Seconds(1));
    loop_.AddTimer(absl::ToInt64Nanoseconds(period),
                   absl::ToInt64Nanoseconds(period),
                   [this] { lifetime_.SweepIdle(); });
  }
}

ReactorCore::~ReactorCore() {
  Stop();
  Wait();
}

absl::Status ReactorCore::Start() {
  MutexLock lock(&lifecycle_mu_);
  if (started_) return absl::FailedPreconditionError("reactor already started");
  if (stopping()) return absl::FailedPreconditionError("reactor stopped");
  started_ = true;
  threads_.reserve(num_workers_ + options_.tls_handshake_threads);
  for (int i = 0; i < num_workers_; ++i) {
    threads_.emplace_back(&EventLoop::WorkerMain, &loop_, i);
  }
  for (int i = 0; i < options_.tls_handshake_threads; ++i) {
    threads_.emplace_back(&EventLoop::HandshakeMain, &loop_, num_workers_ + i);
  }
  return absl::OkStatus();
}

void ReactorCore::Stop() {
  if (!loop_.BeginStop()) return;
  acceptor_.ShutForStop();
  scheduler_.Shutdown();
  loop_.Wake();
}

void ReactorCore::Drain() {
  bool first = false;
  acceptor_.StopAccepting([&] { return first = lifetime_.BeginDrain(); });
  if (!first) return;
  // A connection whose slot this scan misses is closed by its opener:
  // see ConnectionLifetime::OpenHandler.
  table_.ForEachLive([this](Slot* slot, uint64_t state) {
    requests_.Request(ConnectionId{ConnectionTable::IdAt(slot, state)},
                      kCloseRequested);
  });
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
    // From here on Adopt and Connect refuse: the sweep below is the last
    // one.
    MutexLock adopt_lock(&adopt_gate_.mu);
    adopt_gate_.closed = true;
  }
  loop_.DropTasks();
  timers_.Clear();
  lifetime_.CloseAllAfterJoin();
  acceptor_.CloseListeners();
  joined_ = true;
}

}  // namespace baton::internal
