// Internal (project binaries): shared gflags validators.
#include "lib/cli/validators.h"

#include "lib/net/address.h"

namespace baton::cli {

bool ValidateAddressLiteral(const char* flag, const std::string& value) {
  if (net::IsAddressLiteral(value)) return true;
  std::fprintf(stderr,
               "--%s=%s: not an IPv4 or IPv6 address literal "
               "(e.g. 127.0.0.1, ::1, 0.0.0.0; names are not resolved)\n",
               flag, value.c_str());
  return false;
}

}  // namespace baton::cli
