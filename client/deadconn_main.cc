// //client:deadconn — opens N idle ("dead") connections to a server and holds
// them, as Libenzi's /dev/epoll study did to simulate slow links.
//
//   deadconn --connections=10000 --port=12345 [--partial_request]
//            [--duration=SECONDS]
//
// Prints "holding N" on stdout once every connection has been tried, holds
// them until SIGINT, SIGTERM or --duration, then closes them. Exit status 1
// if any connection failed to open or was closed by the server while held.
#include <gflags/gflags.h>
#include <signal.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "client/dead_connections.h"
#include "client/flags.h"
#include "client/net.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"

DEFINE_string(host, "127.0.0.1",
              "server address (IPv4 or IPv6 literal, or a host name looked "
              "up at start), or a Unix socket: unix:/path or unix:@name "
              "(--port is then not used)");
DEFINE_int32(port, 12345, "server port (TCP)");
DEFINE_int32(connections, 1000, "idle connections to open and hold");
DEFINE_bool(partial_request, false,
            "send an incomplete HTTP request on each connection, like a "
            "client on a very slow link");
DEFINE_double(duration, 0, "seconds to hold (0: until SIGINT/SIGTERM)");
DEFINE_int32(timeout_ms, 5000, "connect timeout per connection");

DEFINE_validator(host, &baton::cli::ValidateAddressOrUnix);
DEFINE_validator(port,
                 &baton::cli::ValidatePort<baton::cli::PortUse::kConnect>);
DEFINE_validator(connections, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(timeout_ms, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(duration, &baton::cli::ValidateNonNegative<double>);

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "holds idle connections open\n"
      "  deadconn --connections=N [--host=A --port=P] [--partial_request] "
      "[--duration=S]");
  baton::cli::ParseFlags(&argc, &argv);
  if (argc > 1) {
    std::fprintf(stderr, "deadconn: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  const absl::Status fds = baton::client::ReserveDescriptors(
      FLAGS_connections, absl::StrCat(FLAGS_connections, " connections"));
  if (!fds.ok()) {
    std::fprintf(stderr, "deadconn: %s\n", std::string(fds.message()).c_str());
    return 1;
  }
  // No SA_RESTART: a signal interrupts epoll_wait, so the stop is prompt.
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  auto stopped = [] { return g_stop != 0; };

  baton::client::DeadConnOptions o;
  absl::StatusOr<baton::client::Endpoint> endpoint =
      baton::client::ResolveEndpoint(FLAGS_host, FLAGS_port);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "deadconn: --host=%s: %s\n", FLAGS_host.c_str(),
                 std::string(endpoint.status().message()).c_str());
    return 2;
  }
  o.endpoint = *endpoint;
  o.connections = FLAGS_connections;
  o.partial_request = FLAGS_partial_request;
  // As before for TCP (the host alone); "localhost" for a Unix socket.
  o.host_header = o.endpoint.addr.ss_family == AF_UNIX ? o.endpoint.host_header
                                                       : FLAGS_host;
  o.timeout_ms = FLAGS_timeout_ms;
  baton::client::DeadConnections dead(o);
  // The end of --duration counts from the start: the hold is what is left.
  const int64_t end = FLAGS_duration > 0
                          ? baton::client::NowNanos() +
                                static_cast<int64_t>(FLAGS_duration * 1e9)
                          : INT64_MAX;
  dead.Open(stopped, [](int opened, int failed) {
    std::fprintf(stderr, "progress: %d of %d connections open, %d failed\n",
                 opened, FLAGS_connections, failed);
  });
  if (dead.failed() > 0) {
    std::fprintf(stderr, "deadconn: %d of %d connections failed; first: %s\n",
                 dead.failed(), FLAGS_connections, dead.first_error().c_str());
  }
  const int tried = dead.held() + dead.failed() + dead.dropped();
  if (tried < FLAGS_connections) {
    std::fprintf(stderr, "deadconn: stopped after trying %d of %d\n", tried,
                 FLAGS_connections);
  }
  std::printf("holding %d\n", dead.held());
  std::fflush(stdout);

  dead.Hold(end, stopped);
  const int held = dead.held();
  dead.CloseAll();
  std::printf(
      "closed %d connections (%d closed by the server while held, %d failed "
      "to open)\n",
      held, dead.dropped(), dead.failed());
  return dead.failed() == 0 && dead.dropped() == 0 ? 0 : 1;
}
