// Internal header: listener helpers for the reactor (and the comparison
// servers). The socket helpers shared with servers and clients live in
// lib/net/ (//lib:net).
#ifndef BATON_INTERNAL_SOCKET_UTIL_H_
#define BATON_INTERNAL_SOCKET_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/internal/scoped_fd.h"
#include "lib/net/socket_options.h"

namespace baton::internal {

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

}  // namespace baton::internal

#endif  // BATON_INTERNAL_SOCKET_UTIL_H_
