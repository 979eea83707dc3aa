// Public API implementation: Reactor, a thin facade over
// internal::ReactorCore (lib/internal/reactor_core.h lists its components).
#include "baton/reactor.h"

#include <signal.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "baton/reactor_limits.h"
#include "lib/internal/reactor_core.h"

namespace baton {

// ---------------------------------------------------------------------------
// Reactor: argument checking, then straight to the core.

absl::StatusOr<std::unique_ptr<Reactor>> Reactor::Create(
    const ReactorOptions& options) {
  ReactorOptions o = options;
  if (o.threads < 0 || o.threads > kReactorMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads must be in 0..", kReactorMaxThreads));
  }
  if (o.threads == 0) {
    o.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  if (o.tls_handshake_threads < 0 ||
      o.tls_handshake_threads > kReactorMaxThreads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_handshake_threads must be in 0..", kReactorMaxThreads));
  }
  if (o.tls_handshake_nice < 1 ||
      o.tls_handshake_nice > kReactorMaxHandshakeNice) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_handshake_nice must be in 1..", kReactorMaxHandshakeNice));
  }
  if (o.tls_handshake_max_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "tls_handshake_max_wait must be positive (InfiniteDuration: never)");
  }
  if (o.max_events < 1 || o.max_events > kReactorMaxEvents) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_events must be in 1..", kReactorMaxEvents));
  }
  if (o.max_connections < 1 || o.max_connections > kReactorMaxConnections) {
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
  if (o.reread_rounds < kReactorUnboundedRereads ||
      o.reread_rounds > kReactorMaxRereadRounds) {
    return absl::InvalidArgumentError(
        absl::StrCat("reread_rounds must be -1 (no bound) or in 0..",
                     kReactorMaxRereadRounds));
  }
  if (o.output_high_water < 1) {
    return absl::InvalidArgumentError("output_high_water must be positive");
  }
  if (o.max_retained_input < 1) {
    return absl::InvalidArgumentError("max_retained_input must be positive");
  }
  if (o.read_buffer_size < kReactorMinReadBufferSize ||
      o.read_buffer_size > kReactorMaxReadBufferSize) {
    return absl::InvalidArgumentError(
        "read_buffer_size must be in 512..64 MiB");
  }
  if (o.dns_cache_max_ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("dns_cache_max_ttl must not be negative");
  }
  if (o.dns_cache_max_names < 1) {
    return absl::InvalidArgumentError("dns_cache_max_names must be positive");
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

absl::StatusOr<ConnectionId> Reactor::Connect(const ConnectOptions& options,
                                              HandlerFactory factory) {
  return core_->Connect(options, std::move(factory));
}

absl::Status Reactor::Start() { return core_->Start(); }
void Reactor::Stop() { core_->Stop(); }
void Reactor::Wait() { core_->Wait(); }
bool Reactor::stopping() const { return core_->stopping(); }
bool Reactor::Post(std::function<void()> task) {
  return core_->Post(std::move(task));
}

TimerId Reactor::RunAfter(absl::Duration delay, std::function<void()> fn) {
  // ToInt64Nanoseconds saturates: an infinite delay becomes INT64_MAX,
  // which AddTimer turns into a deadline that never falls due.
  return core_->AddTimer(absl::ToInt64Nanoseconds(delay), 0, std::move(fn),
                         internal::TimerKind::kReactor);
}

TimerId Reactor::RunEvery(absl::Duration period, std::function<void()> fn) {
  if (period <= absl::ZeroDuration() || period == absl::InfiniteDuration()) {
    return 0;
  }
  const int64_t ns = absl::ToInt64Nanoseconds(period);
  return core_->AddTimer(ns, ns, std::move(fn), internal::TimerKind::kReactor);
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

bool Reactor::ResumeReading(ConnectionId id) {
  return core_->Request(id, internal::kResumeRequested);
}
bool Reactor::ShutdownWrite(ConnectionId id) {
  return core_->Request(id, internal::kShutdownRequested);
}
size_t Reactor::pending_output(ConnectionId id) const {
  return core_->PendingOutput(id);
}

void Reactor::Drain() { core_->Drain(); }
void Reactor::StopAccepting() { core_->StopAccepting(); }

size_t Reactor::connection_count() const { return core_->connection_count(); }
ReactorCounters Reactor::Counters() const { return core_->Counters(); }
std::vector<ReactorCounters> Reactor::ThreadCounters() const {
  return core_->ThreadCounters();
}
bool Reactor::InReactorThread() const { return core_->InReactorThread(); }
const ReactorOptions& Reactor::options() const { return core_->options(); }

}  // namespace baton
