// Internal header (project binaries: servers and clients): gflags
// validators shared by their main()s.
#ifndef BATON_CLI_VALIDATORS_H_
#define BATON_CLI_VALIDATORS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace baton::cli {

// gflags validators: on a bad value they print "--flag=value: why" on stderr
// and return false, and gflags then exits non-zero. Use as
// DEFINE_validator(threads, &baton::cli::ValidatePositive<int32_t>).
template <typename T>
bool ValidatePositive(const char* flag, T value) {
  if (value > 0) return true;
  std::fprintf(stderr, "--%s=%s: must be positive\n", flag,
               absl::StrCat(value).c_str());
  return false;
}

template <typename T>
bool ValidateNonNegative(const char* flag, T value) {
  if (value >= 0) return true;
  std::fprintf(stderr, "--%s=%s: must not be negative\n", flag,
               absl::StrCat(value).c_str());
  return false;
}

// The building block of validators with a fixed range: true if
// lo <= value <= hi, else prints "--flag=value: must be in lo..hi" followed
// by `note` (say " seconds" or " (0: off)") and returns false.
bool ValidateInRange(const char* flag, int64_t value, int64_t lo, int64_t hi,
                     absl::string_view note = "");

// Which port numbers a port flag accepts.
enum class PortUse {
  kListen,   // 0..65535: a port to listen on; 0 asks for a free one
  kConnect,  // 1..65535: a peer's port; 0 cannot be connected to
};

// Use as DEFINE_validator(port, &baton::cli::ValidatePort<PortUse::kListen>).
template <PortUse use>
bool ValidatePort(const char* flag, int32_t value);

// 0..255: a byte value such as a marker.
bool ValidateByte(const char* flag, int32_t value);

// An IPv4 or IPv6 literal (net::IsAddressLiteral); names are not resolved.
bool ValidateAddressLiteral(const char* flag, const std::string& value);

// An IPv4 or IPv6 literal or a host name (net::IsHostName); only the
// syntax is checked here: the program looks the name up.
bool ValidateAddressOrHostName(const char* flag, const std::string& value);

// An address literal or host name (as ValidateAddressOrHostName) or a Unix
// socket, unix:/path or unix:@name (net::ParseListenAddress): what a server
// listens on or a client connects to.
bool ValidateAddressOrUnix(const char* flag, const std::string& value);

}  // namespace baton::cli

#endif  // BATON_CLI_VALIDATORS_H_
