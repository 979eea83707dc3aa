// Internal header: socket helpers for listeners and accepted connections.
#ifndef BATON_INTERNAL_SOCKET_UTIL_H_
#define BATON_INTERNAL_SOCKET_UTIL_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/internal/scoped_fd.h"

namespace baton::internal {

// A status for the failed call `what` with errno `err`: the code mapped
// from the errno, the message "what: strerror(err)".
absl::Status ErrnoStatus(absl::string_view what, int err);

// Parses an IPv4 or IPv6 literal and port into `addr`; returns its length.
absl::StatusOr<socklen_t> ParseSocketAddress(absl::string_view address,
                                             int port,
                                             sockaddr_storage* addr);

// Creates a non-blocking, close-on-exec listening TCP socket bound to
// `address`:`port` (SO_REUSEADDR; SO_REUSEPORT when asked). TCP_NODELAY is
// set on the listener: accepted sockets inherit it, which saves a
// setsockopt per connection.
absl::StatusOr<ScopedFd> CreateListener(absl::string_view address, int port,
                                        int backlog, bool reuse_port);

// The local port a socket is bound to.
absl::StatusOr<int> LocalPort(int fd);

// "ADDR:PORT" (IPv6 as "[ADDR]:PORT") of a socket's local address.
std::string LocalAddressString(int fd);

// Sets O_NONBLOCK and FD_CLOEXEC on `fd`.
absl::Status MakeNonBlockingCloexec(int fd);

// Disables Nagle's algorithm; request/response protocols want every write
// sent at once. Failure (e.g. not TCP) is ignored.
void SetNoDelay(int fd);

}  // namespace baton::internal

#endif  // BATON_INTERNAL_SOCKET_UTIL_H_
