// Internal (project binaries): shared gflags validators.
#include "lib/cli/validators.h"

#include "absl/strings/str_format.h"
#include "lib/net/address.h"
#include "lib/net/endpoint.h"

namespace baton::cli {

bool ValidateInRange(const char* flag, int64_t value, int64_t lo, int64_t hi,
                     absl::string_view note) {
  if (value >= lo && value <= hi) return true;
  absl::FPrintF(stderr, "--%s=%d: must be in %d..%d%s\n", flag, value, lo, hi,
                note);
  return false;
}

template <PortUse use>
bool ValidatePort(const char* flag, int32_t value) {
  if (use == PortUse::kListen) {
    return ValidateInRange(flag, value, 0, 65535,
                           " (the port to listen on; 0 picks a free one)");
  }
  return ValidateInRange(flag, value, 1, 65535, " (the port to connect to)");
}

template bool ValidatePort<PortUse::kListen>(const char* flag, int32_t value);
template bool ValidatePort<PortUse::kConnect>(const char* flag, int32_t value);

bool ValidateByte(const char* flag, int32_t value) {
  return ValidateInRange(flag, value, 0, 255, " (a byte value)");
}

bool ValidateAddressLiteral(const char* flag, const std::string& value) {
  if (net::IsAddressLiteral(value)) return true;
  std::fprintf(stderr,
               "--%s=%s: not an IPv4 or IPv6 address literal "
               "(e.g. 127.0.0.1, ::1, 0.0.0.0; names are not resolved)\n",
               flag, value.c_str());
  return false;
}

bool ValidateAddressOrHostName(const char* flag, const std::string& value) {
  if (net::IsAddressLiteral(value) || net::IsHostName(value)) return true;
  std::fprintf(stderr,
               "--%s=%s: neither an IPv4 or IPv6 address literal nor a host "
               "name (e.g. 127.0.0.1, ::1, localhost)\n",
               flag, value.c_str());
  return false;
}

bool ValidateAddressOrUnix(const char* flag, const std::string& value) {
  if (!net::IsUnixEndpoint(value)) {
    return ValidateAddressOrHostName(flag, value);
  }
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = net::ParseUnixAddress(
      absl::string_view(value).substr(net::kUnixPrefix.size()), &addr);
  if (len.ok()) return true;
  std::fprintf(stderr, "--%s=%s: %s (want unix:/path or unix:@name)\n", flag,
               value.c_str(), std::string(len.status().message()).c_str());
  return false;
}

}  // namespace baton::cli
