// Client library header: sockets, descriptor limits and payload patterns
// shared by the load generators.
#ifndef BATON_CLIENT_NET_H_
#define BATON_CLIENT_NET_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace baton::client {

struct Endpoint {
  sockaddr_storage addr;
  socklen_t len = 0;
  std::string text;  // "host:port" or "unix:/path" for messages
  // What an HTTP request's Host header names: `text` for TCP, "localhost"
  // for a Unix socket.
  std::string host_header;
};

// An IPv4/IPv6 literal, or a host name looked up now (blocking:
// net::LookupHostBlocking with the system's configuration, first address), and
// a port in 1..65535; `text` is net::JoinHostPort(host, port). A `host` of
// "unix:/path" or "unix:@name" is a Unix socket (net::ParseEndpoint; never
// looked up); `port` is then not used.
absl::StatusOr<Endpoint> ResolveEndpoint(const std::string& host, int port);

// Connects a blocking socket with TCP_NODELAY and send/receive timeouts of
// `timeout_ms`; the connect itself is bounded by the same timeout.
absl::StatusOr<int> ConnectBlocking(const Endpoint& endpoint, int timeout_ms);

// Starts a non-blocking connect (TCP_NODELAY set). The socket becomes
// writable once connected; check SO_ERROR then. A Unix socket connects at
// once or fails (there is no connect in progress): the connect blocks
// while the listener's backlog is full, for up to 10 s, instead of failing
// with EAGAIN, and the socket is non-blocking when returned.
absl::StatusOr<int> ConnectNonBlocking(const Endpoint& endpoint);

// Raises RLIMIT_NOFILE's soft limit towards `wanted` (up to the hard limit)
// and returns the limit now in force.
int64_t RaiseFileLimit(int64_t wanted);

// Payload `index` of `size` bytes: position- and index-dependent, so a
// flipped, dropped, duplicated or reordered byte is detected.
std::string Payload(size_t size, uint32_t index);

// Monotonic clock in nanoseconds (net::MonotonicNanos).
int64_t NowNanos();

}  // namespace baton::client

#endif  // BATON_CLIENT_NET_H_
