// Internal header (project binaries: servers and clients): gflags
// validators shared by their main()s.
#ifndef BATON_CLI_VALIDATORS_H_
#define BATON_CLI_VALIDATORS_H_

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

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

// An IPv4 or IPv6 literal (net::IsAddressLiteral); names are not resolved.
bool ValidateAddressLiteral(const char* flag, const std::string& value);

}  // namespace baton::cli

#endif  // BATON_CLI_VALIDATORS_H_
