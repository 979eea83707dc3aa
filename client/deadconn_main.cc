// //client:deadconn — opens N idle ("dead") connections to a server and holds
// them, as Libenzi's /dev/epoll study did to simulate slow links.
//
//   deadconn --connections=10000 --port=12345 [--partial_request]
//            [--duration=SECONDS]
//
// Prints "holding N" once every connection is open, holds them until SIGINT,
// SIGTERM or --duration, then closes them. Exit status 1 if any connection
// failed to open or was closed by the server while held.
#include <gflags/gflags.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "client/net.h"

DEFINE_string(host, "127.0.0.1", "server address (IPv4 or IPv6 literal)");
DEFINE_int32(port, 12345, "server port");
DEFINE_int32(connections, 1000, "idle connections to open and hold");
DEFINE_bool(partial_request, false,
            "send an incomplete HTTP request on each connection, like a "
            "client on a very slow link");
DEFINE_double(duration, 0, "seconds to hold (0: until SIGINT/SIGTERM)");
DEFINE_int32(timeout_ms, 5000, "connect timeout per connection");

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

bool PositiveInt(const char* flag, int32_t v) {
  if (v > 0) return true;
  std::fprintf(stderr, "--%s=%d: must be positive\n", flag, v);
  return false;
}
bool NonNegative(const char* flag, double v) {
  if (v >= 0) return true;
  std::fprintf(stderr, "--%s=%g: must not be negative\n", flag, v);
  return false;
}

}  // namespace

DEFINE_validator(connections, &PositiveInt);
DEFINE_validator(timeout_ms, &PositiveInt);
DEFINE_validator(duration, &NonNegative);

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "holds idle connections open\n"
      "  deadconn --connections=N [--host=A --port=P] [--partial_request] "
      "[--duration=S]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) {
    std::fprintf(stderr, "deadconn: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  absl::StatusOr<baton::client::Endpoint> endpoint =
      baton::client::ResolveEndpoint(FLAGS_host, FLAGS_port);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "deadconn: %s\n",
                 std::string(endpoint.status().message()).c_str());
    return 2;
  }
  const int64_t limit = baton::client::RaiseFileLimit(FLAGS_connections + 64);
  if (limit < FLAGS_connections + 16) {
    std::fprintf(stderr,
                 "deadconn: %d connections need about %d descriptors but the "
                 "limit is %lld (raise it with ulimit -n)\n",
                 FLAGS_connections, FLAGS_connections + 16,
                 static_cast<long long>(limit));
    return 1;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string partial =
      "GET /slow HTTP/1.1\r\nHost: " + FLAGS_host + "\r\nX-Slow: ";
  std::vector<int> fds;
  fds.reserve(FLAGS_connections);
  int failed = 0;
  std::string first_error;
  for (int i = 0; i < FLAGS_connections && !g_stop; ++i) {
    absl::StatusOr<int> fd =
        baton::client::ConnectBlocking(*endpoint, FLAGS_timeout_ms);
    if (!fd.ok()) {
      if (first_error.empty()) first_error = std::string(fd.status().message());
      ++failed;
      continue;
    }
    if (FLAGS_partial_request) {
      ::send(*fd, partial.data(), partial.size(), MSG_NOSIGNAL);
    }
    fds.push_back(*fd);
    if ((i + 1) % 1000 == 0) {
      std::fprintf(stderr, "progress: %d of %d connections open\n", i + 1,
                   FLAGS_connections);
    }
  }
  if (failed > 0) {
    std::fprintf(stderr, "deadconn: %d connections failed; first: %s\n",
                 failed, first_error.c_str());
  }
  std::printf("holding %zu\n", fds.size());
  std::fflush(stdout);

  // Hold, watching for connections the server closes (POLLRDHUP), without
  // reading anything: the point is to be idle.
  const int64_t end =
      FLAGS_duration > 0
          ? baton::client::NowNanos() + static_cast<int64_t>(FLAGS_duration * 1e9)
          : INT64_MAX;
  std::vector<pollfd> polls(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) polls[i] = {fds[i], POLLRDHUP, 0};
  int dropped = 0;
  while (!g_stop && baton::client::NowNanos() < end) {
    const int n = ::poll(polls.data(), polls.size(), 200);
    if (n <= 0) continue;
    for (pollfd& p : polls) {
      if (p.fd >= 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        ++dropped;
        ::close(p.fd);
        p.fd = -1;  // poll ignores negative descriptors
      }
    }
  }
  for (const pollfd& p : polls) {
    if (p.fd >= 0) ::close(p.fd);
  }
  std::printf("closed %zu connections (%d closed by the server while held, "
              "%d failed to open)\n",
              fds.size(), dropped, failed);
  return failed == 0 && dropped == 0 ? 0 : 1;
}
