// Internal: socket helpers.
#include "lib/internal/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace baton::internal {

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<socklen_t> ParseSocketAddress(absl::string_view address,
                                             int port,
                                             sockaddr_storage* addr) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", port, " is out of range 0..65535"));
  }
  std::memset(addr, 0, sizeof(*addr));
  const std::string text(address);
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return static_cast<socklen_t>(sizeof(sockaddr_in));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return static_cast<socklen_t>(sizeof(sockaddr_in6));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", address, "' is not an IPv4 or IPv6 address literal"));
}

absl::StatusOr<ScopedFd> CreateListener(absl::string_view address, int port,
                                        int backlog, bool reuse_port) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = ParseSocketAddress(address, port, &addr);
  if (!len.ok()) return len.status();
  ScopedFd fd(::socket(addr.ss_family,
                       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket", errno);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
      0) {
    return ErrnoStatus("setsockopt(SO_REUSEADDR)", errno);
  }
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one,
                                 sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(SO_REUSEPORT)", errno);
  }
  SetNoDelay(fd.get());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), *len) != 0) {
    return ErrnoStatus(absl::StrCat("bind ", address, ":", port), errno);
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoStatus("listen", errno);
  return fd;
}

absl::StatusOr<int> LocalPort(int fd) {
  sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus("getsockname", errno);
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
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(v4->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(v6->sin6_port));
  }
  return "?";
}

absl::Status MakeNonBlockingCloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl(O_NONBLOCK)", errno);
  }
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return ErrnoStatus("fcntl(FD_CLOEXEC)", errno);
  }
  return absl::OkStatus();
}

void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace baton::internal
