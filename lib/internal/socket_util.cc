// Internal: listener helpers.
#include "lib/internal/socket_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/net/address.h"
#include "lib/net/errno_status.h"
#include "lib/net/socket_options.h"

namespace baton::internal {

using net::ErrnoStatus;

absl::StatusOr<ScopedFd> CreateListener(absl::string_view address, int port,
                                        int backlog, bool reuse_port) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = net::ParseSocketAddress(address, port, &addr);
  if (!len.ok()) return len.status();
  ScopedFd fd(
      ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return net::ErrnoStatus("socket", errno);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
      0) {
    return net::ErrnoStatus("setsockopt(SO_REUSEADDR)", errno);
  }
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one,
                                 sizeof(one)) != 0) {
    return net::ErrnoStatus("setsockopt(SO_REUSEPORT)", errno);
  }
  net::SetNoDelay(fd.get());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), *len) != 0) {
    return net::ErrnoStatus(
        absl::StrCat("bind ", net::JoinHostPort(address, port)), errno);
  }
  if (::listen(fd.get(), backlog) != 0)
    return net::ErrnoStatus("listen", errno);
  return fd;
}

absl::StatusOr<int> LocalPort(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return net::ErrnoStatus("getsockname", errno);
  }
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  return absl::InvalidArgumentError("not an IP socket");
}

std::string LocalAddressString(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return "?";
  }
  return net::SocketAddressString(addr, len);
}

absl::Status MakeNonBlockingCloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return net::ErrnoStatus("fcntl(O_NONBLOCK)", errno);
  }
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return net::ErrnoStatus("fcntl(FD_CLOEXEC)", errno);
  }
  return absl::OkStatus();
}

}  // namespace baton::internal
