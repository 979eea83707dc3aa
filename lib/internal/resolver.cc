// Internal: Resolver (see resolver.h).
#include "lib/internal/resolver.h"

#include <ares.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/net/clock.h"

namespace baton::internal {

// What a c-ares callback needs to find its lookup again: the key, not a
// pointer to the connection, which may be gone by then.
struct Resolver::Query {
  Resolver* resolver;
  uint64_t key;
  int port;
};

namespace {

absl::Status AresStatus(const std::string& host, int status) {
  const std::string message =
      absl::StrCat("resolve ", host, ": ", ares_strerror(status));
  switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
      return absl::NotFoundError(message);
    case ARES_ETIMEOUT:
      return absl::DeadlineExceededError(message);
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return absl::CancelledError(message);
    case ARES_ENOMEM:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

Resolver::Resolver(Poller* poller, TimerQueue* timers, std::string servers,
                   std::function<void(uint64_t key)> done)
    : poller_(poller),
      timers_(timers),
      servers_(std::move(servers)),
      done_(std::move(done)) {}

Resolver::~Resolver() {
  MutexLock lock(&mu_);
  destroying_ = true;
  if (channel_ != nullptr) {
    // Calls every outstanding lookup back with ARES_EDESTRUCTION and closes
    // the sockets (closing them also takes them out of epoll).
    ares_destroy(channel_);
    channel_ = nullptr;
  }
  if (timer_ != 0) timers_->Cancel(timer_);
}

absl::Status Resolver::EnsureChannelLocked() {
  if (channel_ != nullptr) return absl::OkStatus();
  static std::once_flag library_once;
  static int library_status = ARES_SUCCESS;
  std::call_once(library_once,
                 [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (library_status != ARES_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("c-ares library init: ", ares_strerror(library_status)));
  }
  ares_options options = {};
  options.sock_state_cb = &Resolver::OnSocketState;
  options.sock_state_cb_data = this;
  ares_channel channel = nullptr;
  int status = ares_init_options(&channel, &options, ARES_OPT_SOCK_STATE_CB);
  if (status != ARES_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("resolver setup: ", ares_strerror(status)));
  }
  if (!servers_.empty()) {
    status = ares_set_servers_ports_csv(channel, servers_.c_str());
    if (status != ARES_SUCCESS) {
      ares_destroy(channel);
      return absl::InvalidArgumentError(absl::StrCat(
          "resolver servers '", servers_, "': ", ares_strerror(status)));
    }
  }
  channel_ = channel;
  return absl::OkStatus();
}

absl::Status Resolver::Start(uint64_t key, const std::string& host, int port) {
  std::vector<uint64_t> finished;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = EnsureChannelLocked(); !s.ok()) return s;
    entries_[key].host = host;
    ares_addrinfo_hints hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    // May call OnResult at once (a hosts file entry) and open sockets.
    ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints,
                     &Resolver::OnResult, new Query{this, key, port});
    UpdateTimerLocked();
    finished.swap(finished_);
  }
  Announce(std::move(finished));
  return absl::OkStatus();
}

std::optional<LookupResult> Resolver::Take(uint64_t key) {
  MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || !it->second.result.has_value()) {
    return std::nullopt;
  }
  std::optional<LookupResult> result = std::move(it->second.result);
  entries_.erase(it);
  return result;
}

void Resolver::Forget(uint64_t key) {
  MutexLock lock(&mu_);
  entries_.erase(key);
}

size_t Resolver::pending() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

void Resolver::HandleEvent(uint64_t data, uint32_t events) {
  const int fd = static_cast<int>(data & 0xffffffffu);
  std::vector<uint64_t> finished;
  {
    MutexLock lock(&mu_);
    // A socket c-ares closed since (its number may now be a connection's:
    // never arm it) leaves a stale event behind; drop it.
    if (channel_ == nullptr || !sockets_.contains(fd)) return;
    const bool readable = events & (EPOLLIN | EPOLLERR | EPOLLHUP);
    const bool writable = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
    ares_process_fd(channel_, readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
    // Still open: one event per arm (EPOLLONESHOT), so arm it again.
    if (auto it = sockets_.find(fd); it != sockets_.end()) {
      poller_->Arm(
          fd, /*add=*/false, it->second,
          kInternalTag | kResolverSourceTag | static_cast<uint32_t>(fd));
    }
    UpdateTimerLocked();
    finished.swap(finished_);
  }
  Announce(std::move(finished));
}

void Resolver::OnTimer(uint64_t sequence) {
  std::vector<uint64_t> finished;
  {
    MutexLock lock(&mu_);
    if (sequence == timer_sequence_) timer_ = 0;
    if (channel_ == nullptr) return;
    // Retransmits what is due and fails what ran out of tries.
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    UpdateTimerLocked();
    finished.swap(finished_);
  }
  Announce(std::move(finished));
}

void Resolver::UpdateTimerLocked() {
  timeval tv;
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    // Nothing in flight.
    if (timer_ != 0) timers_->Cancel(timer_);
    timer_ = 0;
    return;
  }
  const int64_t deadline = net::MonotonicNanos() +
                           int64_t{tv.tv_sec} * 1000000000 +
                           int64_t{tv.tv_usec} * 1000;
  if (timer_ != 0 && timer_deadline_ns_ <= deadline) return;  // due first
  if (timer_ != 0) timers_->Cancel(timer_);
  const uint64_t sequence = ++timer_sequence_;
  timer_deadline_ns_ = deadline;
  timer_ = timers_->Add(deadline, 0, [this, sequence] { OnTimer(sequence); });
}

void Resolver::Announce(std::vector<uint64_t> finished) {
  for (uint64_t key : finished) done_(key);
}

void Resolver::OnSocketState(void* self, int fd, int readable, int writable) {
  // Called by c-ares from inside a call made under mu_.
  auto* resolver = static_cast<Resolver*>(self);
  if (!readable && !writable) {
    // About to be closed, which also takes it out of epoll.
    resolver->sockets_.erase(fd);
    return;
  }
  const uint32_t interest =
      (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
  const bool add = resolver->sockets_.insert({fd, interest}).second;
  resolver->sockets_[fd] = interest;
  const uint64_t data =
      kInternalTag | kResolverSourceTag | static_cast<uint32_t>(fd);
  int err = resolver->poller_->Arm(fd, add, interest, data);
  // Registered or not after all (a socket reopened under the same number
  // without a close notice): the other operation.
  if (err == EEXIST || err == ENOENT) {
    err = resolver->poller_->Arm(fd, err == ENOENT, interest, data);
  }
  LOG_IF(ERROR, err != 0) << "arming resolver socket: " << std::strerror(err);
}

void Resolver::OnResult(void* arg, int status, int /*timeouts*/,
                        ares_addrinfo* info) {
  // Called by c-ares from inside a call made under mu_.
  std::unique_ptr<Query> query(static_cast<Query*>(arg));
  Resolver* resolver = query->resolver;
  auto it = resolver->entries_.find(query->key);
  if (resolver->destroying_ || it == resolver->entries_.end()) {
    if (info != nullptr) ares_freeaddrinfo(info);
    return;  // forgotten: the connection is gone
  }
  std::vector<ResolvedAddress> addresses;
  if (status == ARES_SUCCESS && info != nullptr) {
    const uint16_t port = htons(static_cast<uint16_t>(query->port));
    for (ares_addrinfo_node* node = info->nodes; node != nullptr;
         node = node->ai_next) {
      ResolvedAddress a;
      if (node->ai_family == AF_INET &&
          node->ai_addrlen >= sizeof(sockaddr_in)) {
        std::memcpy(&a.address, node->ai_addr, sizeof(sockaddr_in));
        reinterpret_cast<sockaddr_in*>(&a.address)->sin_port = port;
        a.length = sizeof(sockaddr_in);
      } else if (node->ai_family == AF_INET6 &&
                 node->ai_addrlen >= sizeof(sockaddr_in6)) {
        std::memcpy(&a.address, node->ai_addr, sizeof(sockaddr_in6));
        reinterpret_cast<sockaddr_in6*>(&a.address)->sin6_port = port;
        a.length = sizeof(sockaddr_in6);
      } else {
        continue;
      }
      addresses.push_back(a);
    }
  }
  if (info != nullptr) ares_freeaddrinfo(info);
  if (status == ARES_SUCCESS && addresses.empty()) status = ARES_ENODATA;
  if (status == ARES_SUCCESS) {
    it->second.result = std::move(addresses);
  } else {
    it->second.result = AresStatus(it->second.host, status);
  }
  resolver->finished_.push_back(query->key);
}

}  // namespace baton::internal
