// Client library header: start-up checks shared by the bench and deadconn
// main()s (their flag validators are in lib/cli/validators.h).
#ifndef BATON_CLIENT_FLAGS_H_
#define BATON_CLIENT_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace baton::client {

// The flags that shape a bench run, and whether each was given on the
// command line (rather than left at its default).
struct RunShapeFlags {
  std::string mode;  // barrier | pingpong | http
  int64_t requests = 0;
  bool requests_given = false;
  bool duration_given = false;
  bool warmup_given = false;
  double rate = 0;
  bool keepalive = false;
};

// InvalidArgument, in words a user can act on, when the flags contradict
// each other: --rate outside --mode=http or with --keepalive or a count of
// --requests; --duration or --warmup with a count of --requests.
absl::Status CheckRunShape(const RunShapeFlags& flags);

// Raises RLIMIT_NOFILE so that `sockets` connections (plus a margin for the
// process's other descriptors) fit. If they cannot, says how many are
// needed, what the soft and hard limits are, how many connections would fit
// and how to raise the limit. `what` names the sockets ("200 threads").
absl::Status ReserveDescriptors(int64_t sockets, const std::string& what);

}  // namespace baton::client

#endif  // BATON_CLIENT_FLAGS_H_
