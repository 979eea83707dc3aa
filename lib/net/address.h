// Internal header (project-wide: lib, servers, clients, tests): IP address
// literals, Unix socket addresses and "host:port" / "unix:/path" text.
#ifndef BATON_NET_ADDRESS_H_
#define BATON_NET_ADDRESS_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace baton::net {

// Parses an IPv4 ("127.0.0.1") or IPv6 ("::1", no brackets, no zone)
// literal and a port in 0..65535 into `addr`; returns the length to pass to
// bind/connect. Host names are not resolved: anything but a literal is
// INVALID_ARGUMENT, as is a port out of range.
absl::StatusOr<socklen_t> ParseSocketAddress(absl::string_view address,
                                             int port, sockaddr_storage* addr);

// True if `address` is an IPv4 or IPv6 literal ParseSocketAddress accepts.
bool IsAddressLiteral(absl::string_view address);

// True if `name` is a DNS host name a resolver may be asked about: 1..253
// characters of dot-separated labels (1..63 letters, digits, '-' or '_', no '-'
// at either end; a trailing dot allowed) whose last label is not all digits, so
// that a malformed IPv4 literal ("1.2.3", "256.0.0.1") is not taken for a name.
bool IsHostName(absl::string_view name);

// "HOST:PORT", or "[HOST]:PORT" when HOST contains a ':' (IPv6), the way
// URLs, logs and Host headers write it.
std::string JoinHostPort(absl::string_view host, int port);

// Fills `addr` with the AF_UNIX address of `path` and returns the length to
// pass to bind/connect. A path starting with '@' names a socket in Linux's
// abstract namespace (no file; the '@' becomes the leading NUL byte and the
// rest of the text is the name, length-delimited). INVALID_ARGUMENT for an
// empty path or name, a NUL byte in a file path, or a path longer than
// sun_path holds (107 bytes for a file path, '@' and 107 for a name).
absl::StatusOr<socklen_t> ParseUnixAddress(absl::string_view path,
                                           sockaddr_storage* addr);

// "unix:" + path, the way servers and clients write a Unix socket address
// ("unix:/run/echo.sock", "unix:@echo").
std::string UnixAddressString(absl::string_view path);

// Text of a socket address: JoinHostPort for AF_INET / AF_INET6,
// UnixAddressString for AF_UNIX ("unix:/path", "unix:@name" for an abstract
// name, "unix:(unnamed)" for a peer that did not bind, as clients do), "?"
// for other families. `len` is what getsockname/getpeername/accept
// returned: an abstract name is delimited by it (without it, by its first
// NUL byte).
std::string SocketAddressString(const sockaddr_storage& addr,
                                socklen_t len = sizeof(sockaddr_storage));

}  // namespace baton::net

#endif  // BATON_NET_ADDRESS_H_
