// Internal: outbound connections (Reactor::Connect). A connecting
// connection is an ordinary slot in ConnectionPhase::kConnecting, claimed
// and served like any other: its socket is armed for EPOLLOUT only (still
// EPOLLONESHOT, re-armed by Serve's one Rearm), completion is read with
// SO_ERROR, and its deadline and back-off are timer queue entries that
// raise kTimerDue on its id, never touch owner state themselves.
#include "lib/internal/connector.h"

#include <glog/logging.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_io.h"
#include "lib/internal/connection_lifetime.h"
#include "lib/internal/connection_timers.h"
#include "lib/internal/event_loop.h"
#include "lib/net/address.h"
#include "lib/net/clock.h"
#include "lib/net/errno_status.h"
#include "lib/net/socket_options.h"

namespace baton::internal {
namespace {

// Back-off before attempt `attempt + 1`: b = initial * 2^(attempt-1),
// capped at max, then uniform in [b/2, b] so that many clients refused at
// once do not come back in step. Saturates at INT64_MAX nanoseconds (an
// infinite max_backoff), which net::DeadlineAfter turns into "never".
int64_t Backoff(const ConnectState& cs) {
  double b = static_cast<double>(cs.initial_backoff_ns);
  for (int i = 1; i < cs.attempt && b < cs.max_backoff_ns; ++i) b *= 2;
  b = std::min(b, static_cast<double>(cs.max_backoff_ns));
  thread_local std::minstd_rand rng(static_cast<uint32_t>(
      net::MonotonicNanos() ^
      std::hash<std::thread::id>()(std::this_thread::get_id())));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  const double ns = b * jitter(rng);
  // 2^63 and above do not fit (converting them is undefined).
  if (ns >= 9.2e18) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(ns);
}

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

// SO_ERROR is 0 both once connected and while still connecting; an event
// left over from an earlier attempt (same id) can reach a socket whose
// connect is still under way, so ask whether there is a peer.
bool IsConnected(int fd) {
  sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  return ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0;
}

// What an attempt's failure names: "connect HOST:PORT" for a literal, the
// address tried for a host name (the attempt's status then lists them all).
std::string AttemptLabel(const ConnectState& cs) {
  return cs.host.empty() ? absl::StrCat("connect ", cs.peer)
                         : net::SocketAddressString(cs.address);
}

absl::Status ConnectError(const ConnectState& cs, int err) {
  return net::ErrnoStatus(AttemptLabel(cs), err);
}

}  // namespace

Connector::Connector(ConnectionTable& table, TimerQueue& timers,
                     CounterSet& counters, AdoptGate& adopt_gate,
                     Resolver& resolver, TlsOptionsCache& tls_contexts,
                     EventLoop* loop, ConnectionLifetime* lifetime,
                     ConnectionTimers* connection_timers, ConnectionIo* io)
    : table_(table),
      timers_(timers),
      counters_(counters),
      adopt_gate_(adopt_gate),
      resolver_(resolver),
      tls_contexts_(tls_contexts),
      loop_(loop),
      lifetime_(lifetime),
      connection_timers_(connection_timers),
      io_(io) {}

bool Connector::stopping() const { return loop_->stopping(); }
bool Connector::draining() const { return lifetime_->draining(); }
bool Connector::Post(std::function<void()> task) {
  return loop_->Post(std::move(task));
}
void Connector::Teardown(Slot* slot, const absl::Status& reason) {
  lifetime_->Teardown(slot, reason);
}
void Connector::SetPhase(Slot* slot, ConnectionPhase to) {
  lifetime_->SetPhase(slot, to);
}
bool Connector::OpenHandler(Slot* slot) { return lifetime_->OpenHandler(slot); }
uint64_t Connector::AddTimerDue(Slot* slot, int64_t deadline_ns) {
  return connection_timers_->AddTimerDue(slot, deadline_ns);
}
void Connector::Serve(Slot* slot, uint32_t revents) {
  io_->Serve(slot, revents);
}

absl::StatusOr<ConnectionId> Connector::Connect(const ConnectOptions& options,
                                                HandlerFactory factory) {
  if (!factory) return absl::InvalidArgumentError("no handler factory");
  if (options.unix_path.empty() ? options.port < 1 || options.port > 65535
                                : options.port != 0) {
    return absl::InvalidArgumentError(
        options.unix_path.empty()
            ? "connect port must be in 1..65535"
            : "a Unix socket has no port (port must be 0)");
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect timeout must be positive");
  }
  if (options.resolve_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("resolve timeout must be positive");
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  if (options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "need 0 <= initial_backoff <= max_backoff");
  }
  auto cs = std::make_unique<ConnectState>();
  if (options.tls != nullptr) {
    absl::StatusOr<TlsOptionsCache::Context> context =
        tls_contexts_.Get(options.tls);  // built once per options object
    if (!context.ok()) return context.status();
    cs->tls = *std::move(context);
  }
  absl::StatusOr<socklen_t> length =
      options.unix_path.empty()
          ? net::ParseSocketAddress(options.address, options.port, &cs->address)
          : net::ParseUnixAddress(options.unix_path, &cs->address);
  if (length.ok()) {
    cs->address_length = *length;
  } else if (options.unix_path.empty() && net::IsHostName(options.address)) {
    cs->host = options.address;  // looked up on a reactor thread
    cs->port = options.port;
    cs->resolve_timeout_ns = absl::ToInt64Nanoseconds(options.resolve_timeout);
  } else {
    return length.status();
  }
  cs->peer = options.unix_path.empty()
                 ? net::JoinHostPort(options.address, options.port)
                 : net::UnixAddressString(options.unix_path);
  cs->timeout_ns = absl::ToInt64Nanoseconds(options.timeout);
  cs->max_attempts = options.max_attempts;
  cs->initial_backoff_ns = absl::ToInt64Nanoseconds(options.initial_backoff);
  cs->max_backoff_ns = absl::ToInt64Nanoseconds(options.max_backoff);

  // As Adopt: under adopt_gate_.mu, so Wait's last sweep cannot miss the slot.
  MutexLock lock(&adopt_gate_.mu);
  if (adopt_gate_.closed || stopping()) {
    return absl::FailedPreconditionError("reactor stopped");
  }
  if (draining()) return absl::FailedPreconditionError("reactor draining");
  Slot* slot = table_.Allocate();
  if (slot == nullptr) {
    Count(&WorkerCounters::rejected);
    return absl::ResourceExhaustedError("max_connections reached");
  }
  // Claimed from birth; the claim travels with the task to a reactor
  // thread, where the handler is made (factories run on reactor threads).
  // A TLS connection from birth: a Write(id) before the handshake queues
  // plaintext for the session, never bytes sent in the clear.
  if (cs->tls != nullptr) {
    slot->state.fetch_or(kTlsOutput, std::memory_order_acq_rel);
  }
  ExtrasOf(slot->owner).connect = std::move(cs);
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  if (!Post([this, slot, factory = std::move(factory)] {
        BeginConnect(slot, factory);
      })) {
    Teardown(slot, absl::CancelledError("reactor stopped"));  // kNew: silent
    return absl::FailedPreconditionError("reactor stopped");
  }
  return id;
}

void Connector::BeginConnect(Slot* slot, const HandlerFactory& factory) {
  AssertClaimed(slot);
  OwnerState& owner = slot->owner;
  std::unique_ptr<ConnectionHandler> handler = factory();
  if (handler == nullptr) {
    LOG_EVERY_N(ERROR, 1000) << "handler factory returned null; not connecting";
    Teardown(slot, absl::InternalError("no handler"));
    return;
  }
  owner.handler = handler.release();
  SetPhase(slot, ConnectionPhase::kConnecting);
  // Stopped or draining since Connect returned (maybe by the factory just
  // now): no socket; Drain's close request for this slot finds it gone.
  if (stopping() || draining()) {
    Teardown(slot, absl::CancelledError(stopping() ? "reactor stopped"
                                                   : "reactor draining"));
    return;
  }
  if (!owner.extras->connect->host.empty()) {
    StartLookup(slot);  // a host name: looked up first
    return;
  }
  bool connected = false;
  if (!StartAttempt(slot, &connected)) return;
  // Not registered yet: Serve's Rearm adds the socket for EPOLLOUT.
  Serve(slot, connected ? static_cast<uint32_t>(EPOLLOUT) : 0u);
}

bool Connector::StartAttempt(Slot* slot, bool* connected) {
  OwnerState& owner = slot->owner;
  ConnectState& cs = *owner.extras->connect;
  if (cs.next_address == 0) ++cs.attempt;
  if (!cs.addresses.empty()) {
    cs.address = cs.addresses[cs.next_address].address;
    cs.address_length = cs.addresses[cs.next_address].length;
  }
  Count(&WorkerCounters::connect_attempts);
  slot->last_activity_ms.store(net::CoarseMonotonicMillis(),
                               std::memory_order_relaxed);
  const int fd = ::socket(cs.address.ss_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return AttemptFailed(slot, ConnectError(cs, errno));
  owner.fd = fd;
  owner.registered = false;
  if (cs.address.ss_family != AF_UNIX) net::SetNoDelay(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&cs.address),
                cs.address_length) == 0) {
    *connected = true;
    return true;
  }
  // EINTR: the connect goes on asynchronously, as for EINPROGRESS. (A
  // Unix socket never answers EINPROGRESS: it connects at once or fails,
  // with EAGAIN when the listener's backlog is full.)
  if (errno != EINPROGRESS && errno != EINTR) {
    return AttemptFailed(slot, ConnectError(cs, errno));
  }
  cs.deadline_ns = net::DeadlineAfter(net::MonotonicNanos(), cs.timeout_ns);
  // An infinite timeout: no deadline to wait for.
  cs.timer = cs.deadline_ns == net::kNeverNanos
                 ? 0
                 : AddTimerDue(slot, cs.deadline_ns);
  return true;
}

bool Connector::ServeConnecting(Slot* slot, uint32_t requests,
                                uint32_t revents) {
  OwnerState& owner = slot->owner;
  if (requests & kAbortRequested) {
    Teardown(slot, absl::CancelledError("aborted while connecting"));
    return false;
  }
  if (requests & kCloseRequested) {
    Teardown(slot,
             absl::CancelledError(draining() ? "reactor draining"
                                             : "closed while connecting"));
    return false;
  }
  if (requests & kTimedOut) {
    Count(&WorkerCounters::idle_timeouts);
    Teardown(slot,
             absl::DeadlineExceededError("idle timeout while connecting"));
    return false;
  }
  // Kept for when the connection opens.
  if (requests & kShutdownRequested) owner.shutdown_due = true;
  if (requests & kResumeRequested) owner.user_paused = false;
  ConnectState& cs = *owner.extras->connect;
  if (cs.lookup != nullptr) return ServeLookup(slot, requests);
  if (owner.fd >= 0 && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    if (const int err = SocketError(owner.fd); err != 0) {
      return AttemptFailed(slot, ConnectError(cs, err));
    }
    if (IsConnected(owner.fd)) {
      if (cs.timer != 0) timers_.Cancel(cs.timer);
      VLOG(1) << "connected to " << cs.peer << " (attempt " << cs.attempt
              << ")";
      std::shared_ptr<const tls::TlsContext> tls = std::move(cs.tls);
      owner.extras->connect.reset();
      if (tls != nullptr) return lifetime_->StartTls(slot, tls);
      if (owner.extras->empty()) owner.extras.reset();
      return OpenHandler(slot);
    }
    // Left over from an earlier attempt: this one is still under way.
  }
  if ((requests & kTimerDue) && net::MonotonicNanos() >= cs.deadline_ns) {
    cs.timer = 0;
    if (owner.fd >= 0) {
      return AttemptFailed(
          slot, absl::DeadlineExceededError(absl::StrCat(
                    AttemptLabel(cs), ": timed out after ",
                    absl::FormatDuration(absl::Nanoseconds(cs.timeout_ns)))));
    }
    // The back-off is over.
    return StartNextAttempt(slot);
  }
  return true;
}

bool Connector::StartNextAttempt(Slot* slot) {
  // After Stop or Drain no new attempt starts, even if their close request
  // has not reached this connection yet (it may be on its way while this
  // thread holds the claim).
  if (stopping() || draining()) {
    Teardown(slot, absl::CancelledError(stopping() ? "reactor stopped"
                                                   : "reactor draining"));
    return false;
  }
  bool connected = false;
  if (!StartAttempt(slot, &connected)) return false;
  if (connected) return ServeConnecting(slot, 0, EPOLLOUT);
  return true;
}

bool Connector::AttemptFailed(Slot* slot, const absl::Status& reason) {
  OwnerState& owner = slot->owner;
  ConnectState& cs = *owner.extras->connect;
  if (cs.timer != 0) {
    timers_.Cancel(cs.timer);
    cs.timer = 0;
  }
  if (owner.fd >= 0) {
    ::close(owner.fd);  // also leaves epoll
    owner.fd = -1;
    owner.registered = false;
  }
  absl::Status failure = reason;
  if (!cs.addresses.empty()) {
    // A host name: the attempt goes on with its next address, at once
    // (through the timer queue, as the end of a back-off), or fails with
    // what every address said.
    cs.errors.emplace_back(reason.message());
    if (++cs.next_address < cs.addresses.size() && !stopping() && !draining()) {
      cs.deadline_ns = net::MonotonicNanos();
      cs.timer = AddTimerDue(slot, cs.deadline_ns);
      return true;
    }
    cs.next_address = 0;
    failure = absl::Status(reason.code(),
                           absl::StrCat("connect ", cs.peer, ": ",
                                        absl::StrJoin(cs.errors, "; ")));
    cs.errors.clear();
  }
  if (cs.attempt >= cs.max_attempts || stopping() || draining()) {
    Count(&WorkerCounters::connect_failures);
    VLOG(1) << failure;
    Teardown(slot, cs.max_attempts == 1
                       ? failure
                       : absl::Status(failure.code(),
                                      absl::StrCat(failure.message(), " (",
                                                   cs.attempt, " attempts)")));
    return false;
  }
  const int64_t backoff = Backoff(cs);
  VLOG(1) << failure << "; attempt " << cs.attempt + 1 << " in "
          << backoff / 1000000 << " ms";
  cs.deadline_ns = net::DeadlineAfter(net::MonotonicNanos(), backoff);
  cs.timer = AddTimerDue(slot, cs.deadline_ns);
  return true;
}

}  // namespace baton::internal
