// Internal header (project-wide: lib, servers, clients, tests): IP address
// literals and "host:port" text.
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

// JoinHostPort of an AF_INET or AF_INET6 address ("?" for other families).
std::string SocketAddressString(const sockaddr_storage& addr);

}  // namespace baton::net

#endif  // BATON_NET_ADDRESS_H_
