// Internal header (project-wide: lib, servers, clients, tests): errno as an
// absl::Status.
#ifndef BATON_NET_ERRNO_STATUS_H_
#define BATON_NET_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace baton::net {

// A status whose code is absl::ErrnoToStatusCode(err) and whose message is
// "<what>: <strerror(err)>", e.g. ErrnoStatus("connect to 127.0.0.1:80",
// ECONNREFUSED) is UNAVAILABLE "connect to 127.0.0.1:80: Connection
// refused". Pass errno's value, read right after the failing call. Never
// OK: an `err` of 0 gives UNKNOWN "<what>: errno not set".
absl::Status ErrnoStatus(absl::string_view what, int err);

}  // namespace baton::net

#endif  // BATON_NET_ERRNO_STATUS_H_
