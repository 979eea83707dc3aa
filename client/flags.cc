// Client library: start-up checks.
#include "client/flags.h"

#include <sys/resource.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/net.h"

namespace baton::client {
namespace {

// Descriptors the process needs besides its sockets: stdio, epoll
// instances, the progress thread, glog's file, sanitizer pipes.
constexpr int64_t kSpareDescriptors = 32;

}  // namespace

absl::Status CheckRunShape(const RunShapeFlags& f) {
  if (f.rate > 0 && f.mode != "http") {
    return absl::InvalidArgumentError("--rate is for --mode=http");
  }
  if (f.mode != "http") return absl::OkStatus();
  if (f.rate > 0 && f.keepalive) {
    return absl::InvalidArgumentError(
        "--rate opens a new connection per request: leave out --keepalive "
        "(run the keep-alive clients as a second bench)");
  }
  if (f.rate > 0 && f.requests_given && f.requests != 0) {
    return absl::InvalidArgumentError(
        "--rate runs for --duration seconds: leave out --requests (or give "
        "--requests=0)");
  }
  if (f.rate == 0 && f.requests > 0 && (f.duration_given || f.warmup_given)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", f.duration_given ? "duration" : "warmup",
        " is for a run of a duration: give --requests=0 (or --rate) instead "
        "of --requests=",
        f.requests));
  }
  return absl::OkStatus();
}

absl::Status ReserveDescriptors(int64_t sockets, const std::string& what) {
  const int64_t needed = sockets + kSpareDescriptors;
  const int64_t limit = RaiseFileLimit(needed);
  if (limit >= needed) return absl::OkStatus();
  rlimit hard = {};
  ::getrlimit(RLIMIT_NOFILE, &hard);
  const int64_t fit = std::max<int64_t>(0, limit - kSpareDescriptors);
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " need ", sockets, " sockets (", needed,
      " descriptors), but RLIMIT_NOFILE is ", limit, " (hard limit ",
      hard.rlim_max == RLIM_INFINITY ? std::string("unlimited")
                                     : absl::StrCat(hard.rlim_max),
      "): at most ", fit,
      " connections fit. Raise the hard limit (ulimit -Hn, "
      "/etc/security/limits.conf, or run as root) or ask for fewer."));
}

}  // namespace baton::client
