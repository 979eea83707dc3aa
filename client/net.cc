// Client library: sockets, limits, payloads.
#include "client/net.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/net/address.h"
#include "lib/net/clock.h"
#include "lib/net/endpoint.h"
#include "lib/net/errno_status.h"
#include "lib/net/lookup.h"
#include "lib/net/socket_options.h"

namespace baton::client {

using net::ErrnoStatus;

namespace {

// A full backlog makes a non-blocking Unix connect fail with EAGAIN; a
// blocking one waits for room, bounded by SO_SNDTIMEO.
constexpr int kUnixConnectTimeoutMs = 10000;

absl::StatusOr<int> ConnectUnix(const Endpoint& endpoint, int timeout_ms) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.addr),
                   endpoint.len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno == EAGAIN ? ETIMEDOUT : errno;
    ::close(fd);
    return ErrnoStatus("connect to " + endpoint.text, err);
  }
  const timeval none = {};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
  return fd;
}

}  // namespace

absl::StatusOr<Endpoint> ResolveEndpoint(const std::string& host, int port) {
  if (net::IsUnixEndpoint(host)) {
    absl::StatusOr<net::Endpoint> unix = net::ParseEndpoint(host);
    if (!unix.ok()) return unix.status();
    Endpoint e;
    absl::StatusOr<socklen_t> len =
        net::ParseUnixAddress(unix->unix_path, &e.addr);
    if (!len.ok()) return len.status();
    e.len = *len;
    e.text = unix->ToString();
    e.host_header = "localhost";
    return e;
  }
  if (port < 1 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", port, " is out of range 1..65535"));
  }
  absl::StatusOr<std::string> literal = net::LookupHostBlocking(host);
  if (!literal.ok()) return literal.status();
  Endpoint e;
  absl::StatusOr<socklen_t> len =
      net::ParseSocketAddress(*literal, port, &e.addr);
  if (!len.ok()) return len.status();
  e.len = *len;
  e.text = net::JoinHostPort(host, port);
  e.host_header = e.text;
  return e;
}

absl::StatusOr<int> ConnectNonBlocking(const Endpoint& endpoint) {
  if (endpoint.addr.ss_family == AF_UNIX) {
    absl::StatusOr<int> fd = ConnectUnix(endpoint, kUnixConnectTimeoutMs);
    if (fd.ok()) {
      const int flags = ::fcntl(*fd, F_GETFL);
      ::fcntl(*fd, F_SETFL, flags | O_NONBLOCK);
    }
    return fd;
  }
  const int fd = ::socket(endpoint.addr.ss_family,
                          SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  net::SetNoDelay(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.addr),
                endpoint.len) != 0 &&
      errno != EINPROGRESS) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus("connect to " + endpoint.text, err);
  }
  return fd;
}

absl::StatusOr<int> ConnectBlocking(const Endpoint& endpoint, int timeout_ms) {
  absl::StatusOr<int> fd = endpoint.addr.ss_family == AF_UNIX
                               ? ConnectUnix(endpoint, timeout_ms)
                               : ConnectNonBlocking(endpoint);
  if (!fd.ok()) return fd;
  pollfd p = {*fd, POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  int err = 0;
  socklen_t len = sizeof(err);
  if (ready == 0) {
    err = ETIMEDOUT;
  } else if (ready < 0) {
    err = errno;
  } else {
    ::getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &len);
  }
  if (err != 0) {
    ::close(*fd);
    return ErrnoStatus("connect to " + endpoint.text, err);
  }
  const int flags = ::fcntl(*fd, F_GETFL);
  ::fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

int64_t RaiseFileLimit(int64_t wanted) {
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (static_cast<int64_t>(limit.rlim_cur) < wanted) {
    rlimit raised = limit;
    raised.rlim_cur =
        std::min<rlim_t>(static_cast<rlim_t>(wanted), limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<int64_t>(limit.rlim_cur);
}

std::string Payload(size_t size, uint32_t index) {
  std::string out(size, '\0');
  uint32_t x = index * 2654435761u + 0x9e3779b9u;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x ^ i);
  }
  return out;
}

int64_t NowNanos() { return net::MonotonicNanos(); }

}  // namespace baton::client
