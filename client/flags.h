// Client library header: gflags validators and start-up checks shared by the
// bench and deadconn main()s.
#ifndef BATON_CLIENT_FLAGS_H_
#define BATON_CLIENT_FLAGS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace baton::client {

// gflags validators: on a bad value they print "--flag=value: why" on stderr
// and return false, and gflags then exits non-zero. Use as
// DEFINE_validator(threads, &ValidatePositive<int32_t>).
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

bool ValidatePort(const char* flag, int32_t value);             // 1..65535
bool ValidateHost(const char* flag, const std::string& value);  // a literal

// Raises RLIMIT_NOFILE so that `sockets` connections (plus a margin for the
// process's other descriptors) fit. If they cannot, says how many are
// needed, what the soft and hard limits are, how many connections would fit
// and how to raise the limit. `what` names the sockets ("200 threads").
absl::Status ReserveDescriptors(int64_t sockets, const std::string& what);

}  // namespace baton::client

#endif  // BATON_CLIENT_FLAGS_H_
