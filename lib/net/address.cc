// Internal: address literals and host:port text.
#include "lib/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace baton::net {

absl::StatusOr<socklen_t> ParseSocketAddress(absl::string_view address,
                                             int port, sockaddr_storage* addr) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", port, " is out of range 0..65535"));
  }
  std::memset(addr, 0, sizeof(*addr));
  // inet_pton reads a C string: "127.0.0.1\0junk" would pass as 127.0.0.1.
  const bool has_nul = address.find('\0') != absl::string_view::npos;
  const std::string text(address);
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  if (!has_nul && inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return static_cast<socklen_t>(sizeof(sockaddr_in));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (!has_nul && inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return static_cast<socklen_t>(sizeof(sockaddr_in6));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", address, "' is not an IPv4 or IPv6 address literal"));
}

bool IsAddressLiteral(absl::string_view address) {
  sockaddr_storage addr;
  return ParseSocketAddress(address, 0, &addr).ok();
}

bool IsHostName(absl::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;  // length of the current label
  bool label_all_digits = true;
  char last = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0 || last == '-') return false;
      label = 0;
      label_all_digits = true;
      continue;
    }
    const bool digit = c >= '0' && c <= '9';
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!digit && !letter && c != '-' && c != '_') return false;
    if (label == 0 && c == '-') return false;  // nor ends with one, below
    if (++label > 63) return false;
    label_all_digits = label_all_digits && digit;
    last = c;
  }
  return label > 0 && last != '-' && !label_all_digits;
}

std::string JoinHostPort(absl::string_view host, int port) {
  if (host.find(':') != absl::string_view::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

std::string SocketAddressString(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return JoinHostPort(text, ntohs(v4->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return JoinHostPort(text, ntohs(v6->sin6_port));
  }
  return "?";
}

}  // namespace baton::net
