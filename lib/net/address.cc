// Internal: address literals and host:port text.
#include "lib/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
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

absl::StatusOr<socklen_t> ParseUnixAddress(absl::string_view path,
                                           sockaddr_storage* addr) {
  std::memset(addr, 0, sizeof(*addr));
  auto* un = reinterpret_cast<sockaddr_un*>(addr);
  un->sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path.front() == '@';
  if (path.empty() || (abstract && path.size() == 1)) {
    return absl::InvalidArgumentError(abstract
                                          ? "empty abstract Unix socket name"
                                          : "empty Unix socket path");
  }
  if (!abstract && path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("Unix socket path contains a NUL byte");
  }
  // A file path needs room for its terminating NUL; an abstract name is
  // delimited by the length alone (its '@' stands for the leading NUL).
  const size_t limit = sizeof(un->sun_path) - (abstract ? 0 : 1);
  if (path.size() > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Unix socket path '", path, "' is longer than ", limit, " bytes"));
  }
  std::memcpy(un->sun_path, path.data(), path.size());
  if (abstract) {
    un->sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                  path.size());
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                1);
}

std::string UnixAddressString(absl::string_view path) {
  return absl::StrCat("unix:", path);
}

std::string SocketAddressString(const sockaddr_storage& addr, socklen_t len) {
  if (addr.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
    const size_t base = offsetof(sockaddr_un, sun_path);
    const size_t size =
        len > base ? std::min<size_t>(len - base, sizeof(un->sun_path)) : 0;
    if (size == 0) return "unix:(unnamed)";
    const absl::string_view raw(un->sun_path, size);
    if (raw[0] == '\0') {
      absl::string_view name = raw.substr(1);
      // Without a length, the name ends at its first NUL byte.
      if (len >= sizeof(sockaddr_storage))
        name = name.substr(0, name.find('\0'));
      return UnixAddressString(absl::StrCat("@", name));
    }
    return UnixAddressString(raw.substr(0, raw.find('\0')));
  }
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
