// Client library header: gflags validators and start-up checks shared by the
// bench and deadconn main()s.
#ifndef BATON_CLIENT_FLAGS_H_
#define BATON_CLIENT_FLAGS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/cli/validators.h"

namespace baton::client {

// gflags validators: on a bad value they print "--flag=value: why" on stderr
// and return false, and gflags then exits non-zero. Use as
// DEFINE_validator(threads, &ValidatePositive<int32_t>).
using cli::ValidateNonNegative;
using cli::ValidatePositive;

bool ValidatePort(const char* flag, int32_t value);  // 1..65535
// An IPv4 or IPv6 literal (cli::ValidateAddressLiteral): the clients do not
// resolve names.
bool ValidateHost(const char* flag, const std::string& value);

// Raises RLIMIT_NOFILE so that `sockets` connections (plus a margin for the
// process's other descriptors) fit. If they cannot, says how many are
// needed, what the soft and hard limits are, how many connections would fit
// and how to raise the limit. `what` names the sockets ("200 threads").
absl::Status ReserveDescriptors(int64_t sockets, const std::string& what);

}  // namespace baton::client

#endif  // BATON_CLIENT_FLAGS_H_
