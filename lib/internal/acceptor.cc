// Internal: the acceptor. Listen, the accept loop run on a listener's
// event, descriptor exhaustion, StopAccepting, and Adopt (connections
// made elsewhere).
#include "lib/internal/acceptor.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "lib/internal/socket_util.h"
#include "lib/internal/unix_listener.h"
#include "lib/net/errno_status.h"

namespace baton::internal {
namespace {

// Accepts per listener event, so one busy listener cannot starve the
// connections served on the same thread.
constexpr int kMaxAcceptsPerEvent = 64;
// After running out of descriptors, the listener rests this long before it
// is re-armed, so exhaustion cannot turn into a busy loop.
constexpr int64_t kAcceptBackoffNs = 50 * 1000 * 1000;

// The listening socket for `options`: TCP (CreateListener) or, with a
// unix_path, a Unix socket (CreateUnixListener), whose TCP-only options
// are refused.
absl::StatusOr<UnixListener> OpenListenSocket(const ListenOptions& options) {
  if (options.unix_path.empty()) {
    if (options.unix_mode != -1) {
      return absl::InvalidArgumentError("unix_mode needs a unix_path");
    }
    absl::StatusOr<ScopedFd> fd = CreateListener(
        options.address, options.port, options.backlog, options.reuse_port);
    if (!fd.ok()) return fd.status();
    return UnixListener{std::move(*fd), UnixSocketFile()};
  }
  if (options.port != 0) {
    return absl::InvalidArgumentError(
        "a Unix socket listener has no port (port must be 0)");
  }
  if (options.reuse_port || options.defer_accept_seconds != 0) {
    return absl::InvalidArgumentError(
        "reuse_port and defer_accept_seconds are TCP options: not for a "
        "Unix socket listener");
  }
  return CreateUnixListener(options.unix_path, options.backlog,
                            options.unix_mode);
}

}  // namespace

Acceptor::Acceptor(Poller& poller, ConnectionTable& table, CounterSet& counters,
                   AdoptGate& adopt_gate, EventLoop* loop,
                   ConnectionLifetime* lifetime)
    : poller_(poller),
      table_(table),
      counters_(counters),
      adopt_gate_(adopt_gate),
      loop_(loop),
      lifetime_(lifetime) {
  MutexLock lock(&reserve_mu_);
  reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

absl::StatusOr<int> Acceptor::Listen(const ListenOptions& options,
                                     HandlerFactory factory) {
  if (!factory) return absl::InvalidArgumentError("no handler factory");
  if (options.defer_accept_seconds < 0) {
    return absl::InvalidArgumentError("defer_accept_seconds must be >= 0");
  }
  std::shared_ptr<const tls::TlsContext> tls_context;
  if (options.tls != nullptr) {
    absl::StatusOr<std::shared_ptr<const tls::TlsContext>> context =
        tls::TlsContext::ForServer(*options.tls);
    if (!context.ok()) return context.status();
    tls_context = *std::move(context);
  }
  absl::StatusOr<UnixListener> socket = OpenListenSocket(options);
  if (!socket.ok()) return socket.status();
  ScopedFd* const fd = &socket->fd;
  absl::StatusOr<int> port =
      options.unix_path.empty() ? LocalPort(fd->get()) : 0;
  if (!port.ok()) return port.status();
  if (options.defer_accept_seconds > 0 &&
      ::setsockopt(fd->get(), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                   &options.defer_accept_seconds,
                   sizeof(options.defer_accept_seconds)) != 0) {
    return net::ErrnoStatus("setsockopt(TCP_DEFER_ACCEPT)", errno);
  }

  MutexLock lock(&listeners_mu_);
  if (accepting_stopped()) {
    return absl::FailedPreconditionError(
        "reactor stopped, draining or no longer accepting");
  }
  auto listener = std::make_unique<Listener>();
  listener->fd = std::move(*fd);
  listener->unix_file = std::move(socket->file);
  listener->factory = std::move(factory);
  listener->tls = std::move(tls_context);
  listener->source = kListenerSourceBase + listeners_.size();
  listener->read_at_accept = options.defer_accept_seconds > 0;
  if (const int err = poller_.Arm(listener->fd.get(), /*add=*/true, EPOLLIN,
                                  kInternalTag | listener->source);
      err != 0) {
    return net::ErrnoStatus("epoll_ctl(ADD listener)", err);
  }
  listeners_.push_back(std::move(listener));
  return *port;
}

void Acceptor::HandleListener(Listener* listener) {
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
        ShedOneConnection(listener);
        LOG_EVERY_N(WARNING, 1000)
            << "accept: " << std::strerror(err) << "; backing off ("
            << google::COUNTER << " times)";
        const uint64_t source = listener->source;
        const int listen_fd = listener->fd.get();
        AddTimer(kAcceptBackoffNs, 0, [this, listen_fd, source] {
          if (!accepting_stopped()) {
            poller_.ArmInternal(listen_fd, /*add=*/false, source);
          }
        });
        return;
      }
      if (err == EINVAL && accepting_stopped()) {
        return;  // shut down by Stop, Drain or StopAccepting: stays disarmed
      }
      PLOG(ERROR) << "accept4";
      break;
    }
    Count(&WorkerCounters::accepts);
    Slot* slot = table_.Allocate();
    if (slot == nullptr) {
      // max_connections reached. Counted before the close, so a client
      // that sees its connection end also sees it counted.
      Count(&WorkerCounters::rejected);
      ::close(fd);
      continue;
    }
    OpenConnection(slot, fd, listener->factory,
                   {/*accepted=*/true, /*readable=*/listener->read_at_accept,
                    /*tls=*/listener->tls ? &listener->tls : nullptr});
  }
  if (!accepting_stopped()) {
    poller_.ArmInternal(listener->fd.get(), /*add=*/false, listener->source);
  }
}

void Acceptor::ShedOneConnection(Listener* listener) {
  MutexLock lock(&reserve_mu_);
  if (!reserve_fd_.valid()) return;
  reserve_fd_.Reset();
  const int fd = ::accept4(listener->fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    Count(&WorkerCounters::rejected);  // before the close, as above
    ::close(fd);
  }
  reserve_fd_.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

absl::StatusOr<ConnectionId> Acceptor::Adopt(int fd, HandlerFactory factory) {
  ScopedFd owned(fd);  // closed on every error path
  if (!factory) return absl::InvalidArgumentError("no handler factory");
  if (absl::Status s = MakeNonBlockingCloexec(fd); !s.ok()) return s;
  MutexLock lock(&adopt_gate_.mu);
  if (adopt_gate_.closed || stopping()) {
    return absl::FailedPreconditionError("reactor stopped");
  }
  Slot* slot = table_.Allocate();
  if (slot == nullptr) {
    Count(&WorkerCounters::rejected);
    return absl::ResourceExhaustedError("max_connections reached");
  }
  // The slot is claimed by this thread; the claim travels with the task to
  // a reactor thread, where OnOpen runs.
  slot->owner.fd = owned.Release();
  const ConnectionId id{ConnectionTable::IdOf(slot)};
  if (!Post([this, slot, factory = std::move(factory)] {
        OpenConnection(slot, slot->owner.fd, factory, OpenMode{});
      })) {
    // Stopping: nobody will run the task. We still hold the claim and Wait
    // cannot have begun its last sweep (it needs adopt_gate_.mu), so close it
    // here. No handler exists yet: no OnClose.
    Teardown(slot, absl::CancelledError("reactor stopped"));
    return absl::FailedPreconditionError("reactor stopped");
  }
  return id;
}

void Acceptor::HandleEvent(uint64_t source) {
  Listener* listener = nullptr;
  {
    MutexLock lock(&listeners_mu_);
    const uint64_t index = source - kListenerSourceBase;
    if (index < listeners_.size()) listener = listeners_[index].get();
  }
  if (listener != nullptr) HandleListener(listener);
}

void Acceptor::StopAccepting(absl::FunctionRef<bool()> first) {
  MutexLock lock(&listeners_mu_);
  if (first()) ShutListenersLocked();
}

void Acceptor::ShutListenersLocked() {
  if (accepting_stopped_.exchange(true, std::memory_order_acq_rel)) return;
  // HandleListener sees accepting_stopped() and leaves the listener
  // disarmed.
  for (auto& listener : listeners_) Shut(*listener);
}

void Acceptor::ShutForStop() {
  MutexLock lock(&listeners_mu_);
  for (auto& listener : listeners_) Shut(*listener);
}

void Acceptor::Shut(Listener& listener) {
  ::shutdown(listener.fd.get(), SHUT_RDWR);
  listener.unix_file.Remove();
}

void Acceptor::CloseListeners() {
  MutexLock lock(&listeners_mu_);
  for (auto& listener : listeners_) listener->fd.Reset();
}

}  // namespace baton::internal
