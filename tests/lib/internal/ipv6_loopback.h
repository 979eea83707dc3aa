// Test utility (header only): whether this host has an IPv6 loopback, so
// that IPv6 tests skip only where IPv6 is really absent and fail on any
// other error.
#ifndef BATON_TESTS_LIB_INTERNAL_IPV6_LOOPBACK_H_
#define BATON_TESTS_LIB_INTERNAL_IPV6_LOOPBACK_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/statusor.h"
#include "lib/net/errno_status.h"

namespace baton::testing {

// Binds a TCP socket to [::1]:0. True if that works; false if IPv6 is
// absent: the kernel has no AF_INET6 (EAFNOSUPPORT) or ::1 is not
// configured (EADDRNOTAVAIL). Any other failure is an error, which a test
// must report as a failure rather than skip.
inline absl::StatusOr<bool> HasIpv6Loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EAFNOSUPPORT) return false;
    return net::ErrnoStatus("socket(AF_INET6)", errno);
  }
  sockaddr_in6 addr = {};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  const int rc =
      ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc == 0) return true;
  if (err == EADDRNOTAVAIL || err == EAFNOSUPPORT) return false;
  return net::ErrnoStatus("bind [::1]:0", err);
}

}  // namespace baton::testing

#endif  // BATON_TESTS_LIB_INTERNAL_IPV6_LOOPBACK_H_
