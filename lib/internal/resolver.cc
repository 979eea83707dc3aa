// Internal: Resolver (see resolver.h).
#include "lib/internal/resolver.h"

#include <ares.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/net/clock.h"

namespace baton::internal {

// What a c-ares callback needs to find its lookups again: the name (its
// flight lists their keys), not pointers to connections, which may be gone
// by then.
struct Resolver::Query {
  Resolver* resolver;
  std::string host;
  int family;
};

namespace {

// Every lookup asks for IPv6 and IPv4 addresses.
constexpr int kFamily = AF_UNSPEC;

// `result` (kept without ports) with `port` in each address.
LookupResult WithPort(LookupResult result, int port) {
  if (!result.ok()) return result;
  const uint16_t network_port = htons(static_cast<uint16_t>(port));
  for (ResolvedAddress& a : *result) {
    if (a.address.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&a.address)->sin_port = network_port;
    } else if (a.address.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&a.address)->sin6_port = network_port;
    }
  }
  return result;
}

// The addresses of `info` (ports left 0) and the smallest TTL of its
// records, in seconds (CNAMEs included).
std::vector<ResolvedAddress> Addresses(const ares_addrinfo* info,
                                       int64_t* min_ttl) {
  std::vector<ResolvedAddress> addresses;
  *min_ttl = INT64_MAX;
  for (const ares_addrinfo_node* node = info->nodes; node != nullptr;
       node = node->ai_next) {
    ResolvedAddress a;
    if (node->ai_family == AF_INET && node->ai_addrlen >= sizeof(sockaddr_in)) {
      a.length = sizeof(sockaddr_in);
    } else if (node->ai_family == AF_INET6 &&
               node->ai_addrlen >= sizeof(sockaddr_in6)) {
      a.length = sizeof(sockaddr_in6);
    } else {
      continue;
    }
    std::memcpy(&a.address, node->ai_addr, a.length);
    addresses.push_back(a);
    *min_ttl = std::min<int64_t>(*min_ttl, node->ai_ttl);
  }
  for (const ares_addrinfo_cname* c = info->cnames; c != nullptr; c = c->next) {
    *min_ttl = std::min<int64_t>(*min_ttl, c->ttl);
  }
  if (addresses.empty()) *min_ttl = 0;
  return addresses;
}

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
                   std::function<void(uint64_t key)> done,
                   int64_t cache_max_ttl_ns, size_t cache_max_names)
    : poller_(poller),
      timers_(timers),
      servers_(std::move(servers)),
      done_(std::move(done)),
      cache_(cache_max_ttl_ns, cache_max_names) {}

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

std::optional<LookupResult> Resolver::Cached(const std::string& host,
                                             int port) {
  std::optional<LookupResult> cached = cache_.Find(host, kFamily);
  if (!cached.has_value()) return std::nullopt;
  return WithPort(*std::move(cached), port);
}

absl::StatusOr<Resolver::Started> Resolver::Start(uint64_t key,
                                                  const std::string& host,
                                                  int port) {
  Started started = Started::kJoined;
  std::vector<uint64_t> finished;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = EnsureChannelLocked(); !s.ok()) return s;
    Entry& entry = entries_[key];
    entry.port = port;
    auto [flight, added] = flights_.try_emplace(FlightKey(host, kFamily));
    if (!added) {
      flight->second.push_back(key);  // a query of this name is in flight
    } else if (std::optional<LookupResult> cached = cache_.Find(host, kFamily);
               cached.has_value()) {
      // Answered since the caller looked at the cache.
      flights_.erase(flight);
      entry.result = WithPort(*std::move(cached), port);
      finished_.push_back(key);
    } else {
      flight->second.push_back(key);
      started = Started::kQuery;
      ares_addrinfo_hints hints = {};
      hints.ai_family = kFamily;
      hints.ai_socktype = SOCK_STREAM;
      auto* query = new Query{this, host, kFamily};
      // May call OnResult at once (a hosts file entry) and open sockets.
      starting_ = query;
      ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints,
                       &Resolver::OnResult, query);
      starting_ = nullptr;
      UpdateTimerLocked();
    }
    finished.swap(finished_);
  }
  Announce(std::move(finished));
  return started;
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
  const bool from_hosts_file = query.get() == resolver->starting_;
  std::vector<uint64_t> waiters;
  if (auto flight =
          resolver->flights_.find(FlightKey(query->host, query->family));
      flight != resolver->flights_.end()) {
    waiters = std::move(flight->second);
    resolver->flights_.erase(flight);
  }
  if (resolver->destroying_) {
    if (info != nullptr) ares_freeaddrinfo(info);
    return;
  }
  std::vector<ResolvedAddress> addresses;
  int64_t min_ttl = 0;
  if (status == ARES_SUCCESS && info != nullptr) {
    addresses = Addresses(info, &min_ttl);
  }
  if (info != nullptr) ares_freeaddrinfo(info);
  if (status == ARES_SUCCESS && addresses.empty()) status = ARES_ENODATA;
  LookupResult result = status == ARES_SUCCESS
                            ? LookupResult(std::move(addresses))
                            : LookupResult(AresStatus(query->host, status));
  int64_t ttl_ns = 0;  // server failures are not kept
  if (result.ok()) {
    ttl_ns = from_hosts_file ? kHostsFileTtlNs : min_ttl * 1000000000;
  } else if (absl::IsNotFound(result.status())) {
    ttl_ns = kNegativeTtlNs;
  }
  resolver->cache_.Insert(query->host, query->family, result, ttl_ns);
  for (uint64_t key : waiters) {
    auto it = resolver->entries_.find(key);
    // Forgotten (the connection is gone), or answered already.
    if (it == resolver->entries_.end() || it->second.result.has_value()) {
      continue;
    }
    it->second.result = WithPort(result, it->second.port);
    resolver->finished_.push_back(key);
  }
}

}  // namespace baton::internal
