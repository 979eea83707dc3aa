// Internal header (project-wide: servers, clients, tests): the text of an
// endpoint given on a command line, "HOST:PORT" or a Unix socket address
// "unix:/path" / "unix:@name".
#ifndef BATON_NET_ENDPOINT_H_
#define BATON_NET_ENDPOINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace baton::net {

// The prefix that marks a Unix socket address.
inline constexpr absl::string_view kUnixPrefix = "unix:";

struct Endpoint {
  // A TCP endpoint: host (without brackets) and port; unix_path empty.
  std::string host;
  int port = 0;
  // A Unix socket: the path ("/run/echo.sock"), or '@' and a name in the
  // abstract namespace ("@echo"); host empty and port 0.
  std::string unix_path;

  bool is_unix() const { return !unix_path.empty(); }
  // "HOST:PORT" ("[HOST]:PORT" for IPv6) or "unix:PATH".
  std::string ToString() const;
};

// True if `text` starts with "unix:".
bool IsUnixEndpoint(absl::string_view text);

// Parses "unix:/path" or "unix:@name" (the path as given, relative paths
// included; checked by net::ParseUnixAddress) or "HOST:PORT" / "[IPv6]:PORT"
// with a port in 1..65535. HOST is not checked here: callers that want a
// literal (net::IsAddressLiteral) or a name check it themselves.
// INVALID_ARGUMENT, naming `text`, for anything else.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text);

// For a listen address flag: "unix:/path" / "unix:@name" gives the path
// (as ParseEndpoint); anything else is returned as a host with unix_path
// empty and port 0 (the caller takes the port from elsewhere).
absl::StatusOr<Endpoint> ParseListenAddress(absl::string_view text);

}  // namespace baton::net

#endif  // BATON_NET_ENDPOINT_H_
