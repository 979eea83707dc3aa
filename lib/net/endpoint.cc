// Internal: endpoint text ("HOST:PORT", "unix:/path").
#include "lib/net/endpoint.h"

#include <sys/socket.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/net/address.h"

namespace baton::net {
namespace {

absl::StatusOr<Endpoint> ParseUnix(absl::string_view text) {
  Endpoint e;
  e.unix_path = std::string(text.substr(kUnixPrefix.size()));
  sockaddr_storage addr;
  if (absl::StatusOr<socklen_t> len = ParseUnixAddress(e.unix_path, &addr);
      !len.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': ", len.status().message(),
                     " (want unix:/path or unix:@name)"));
  }
  return e;
}

}  // namespace

std::string Endpoint::ToString() const {
  return is_unix() ? UnixAddressString(unix_path) : JoinHostPort(host, port);
}

bool IsUnixEndpoint(absl::string_view text) {
  return absl::StartsWith(text, kUnixPrefix);
}

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text) {
  if (IsUnixEndpoint(text)) return ParseUnix(text);
  const size_t colon = text.rfind(':');
  if (colon == text.npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "': want HOST:PORT, [IPv6]:PORT, unix:/path or unix:@name"));
  }
  absl::string_view host = text.substr(0, colon);
  const bool bracketed =
      host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': no host"));
  }
  const bool v6 = host.find(':') != host.npos;
  if (v6 != bracketed) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': ",
                     v6 ? "an IPv6 address goes in brackets: [IPv6]:PORT"
                        : "only an IPv6 address goes in brackets"));
  }
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': port must be 1..65535"));
  }
  Endpoint e;
  e.host = std::string(host);
  e.port = port;
  return e;
}

absl::StatusOr<Endpoint> ParseListenAddress(absl::string_view text) {
  if (IsUnixEndpoint(text)) return ParseUnix(text);
  Endpoint e;
  e.host = std::string(text);
  return e;
}

}  // namespace baton::net
