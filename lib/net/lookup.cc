// Internal: LookupHostBlocking (see lookup.h).
#include "lib/net/lookup.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/net/address.h"
#include "lib/net/clock.h"

namespace baton::net {
namespace {

struct Outcome {
  bool done = false;
  int status = ARES_SUCCESS;
  std::string literal;
};

void OnResult(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) {
  auto* out = static_cast<Outcome*>(arg);
  out->done = true;
  out->status = status;
  for (const ares_addrinfo_node* node = info != nullptr ? info->nodes : nullptr;
       node != nullptr && out->literal.empty(); node = node->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    if (node->ai_family == AF_INET) {
      inet_ntop(AF_INET,
                &reinterpret_cast<const sockaddr_in*>(node->ai_addr)->sin_addr,
                text, sizeof(text));
    } else if (node->ai_family == AF_INET6) {
      inet_ntop(
          AF_INET6,
          &reinterpret_cast<const sockaddr_in6*>(node->ai_addr)->sin6_addr,
          text, sizeof(text));
    }
    out->literal = text;
  }
  if (info != nullptr) ares_freeaddrinfo(info);
}

// Waits for the channel's sockets (or its next timeout, at most until
// `deadline_ns`) and lets c-ares process what is ready.
void ProcessOnce(ares_channel channel, int64_t deadline_ns) {
  ares_socket_t socks[ARES_GETSOCK_MAXNUM];
  const int mask = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
  std::vector<pollfd> fds;
  for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
    short events = 0;
    if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
    if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
    if (events != 0) fds.push_back({socks[i], events, 0});
  }
  int64_t wait_ns = std::max<int64_t>(deadline_ns - MonotonicNanos(), 0);
  timeval tv;
  if (ares_timeout(channel, nullptr, &tv) != nullptr) {
    wait_ns = std::min<int64_t>(
        wait_ns, int64_t{tv.tv_sec} * 1000000000 + int64_t{tv.tv_usec} * 1000);
  }
  const int wait_ms = static_cast<int>((wait_ns + 999999) / 1000000);
  const int ready = ::poll(fds.data(), fds.size(), wait_ms);
  if (ready <= 0) {
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    return;
  }
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    const bool readable = p.revents & (POLLIN | POLLERR | POLLHUP);
    const bool writable = p.revents & (POLLOUT | POLLERR | POLLHUP);
    ares_process_fd(channel, readable ? p.fd : ARES_SOCKET_BAD,
                    writable ? p.fd : ARES_SOCKET_BAD);
  }
}

}  // namespace

absl::StatusOr<std::string> LookupHostBlocking(absl::string_view host,
                                               const std::string& dns_servers,
                                               absl::Duration timeout) {
  if (IsAddressLiteral(host)) return std::string(host);
  if (!IsHostName(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", host, "' is neither an IP address literal nor a host name"));
  }
  const std::string name(host);
  static std::once_flag library_once;
  static int library_status = ARES_SUCCESS;
  std::call_once(library_once,
                 [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (library_status != ARES_SUCCESS) {
    return absl::InternalError(
        absl::StrCat("resolve ", name, ": ", ares_strerror(library_status)));
  }
  ares_channel channel = nullptr;
  int status = ares_init(&channel);
  if (status == ARES_SUCCESS && !dns_servers.empty()) {
    status = ares_set_servers_ports_csv(channel, dns_servers.c_str());
  }
  Outcome out;
  if (status == ARES_SUCCESS) {
    ares_addrinfo_hints hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(channel, name.c_str(), nullptr, &hints, &OnResult, &out);
    const int64_t deadline =
        DeadlineAfter(MonotonicNanos(), absl::ToInt64Nanoseconds(timeout));
    while (!out.done && MonotonicNanos() < deadline) {
      ProcessOnce(channel, deadline);
    }
  }
  const bool timed_out = status == ARES_SUCCESS && !out.done;
  if (channel != nullptr) ares_destroy(channel);  // ends a lookup left over
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "resolve ", name, ": timed out after ", absl::FormatDuration(timeout)));
  }
  if (status == ARES_SUCCESS) status = out.status;
  if (status == ARES_SUCCESS && out.literal.empty()) status = ARES_ENODATA;
  if (status == ARES_SUCCESS) return out.literal;
  const std::string message =
      absl::StrCat("resolve ", name, ": ", ares_strerror(status));
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    return absl::NotFoundError(message);
  }
  return absl::UnavailableError(message);
}

}  // namespace baton::net
