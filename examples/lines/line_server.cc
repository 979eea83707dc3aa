// //examples/lines:line_server — the line protocol of line_handler.h served
// with the shared server lifecycle (flags, SIGTERM drain).
//
//   bazel run //examples/lines:line_server -- --port=7000
//   printf 'hello\nworld\n' | nc 127.0.0.1 7000
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <memory>

#include "absl/time/time.h"
#include "baton/reactor.h"
#include "examples/lines/line_handler.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "server/flags.h"
#include "server/serve.h"

DEFINE_int64(request_timeout_ms, 5000,
             "a line must be complete this long after its first byte");
DEFINE_int64(max_line, 64 << 10, "longest line accepted, in bytes");
DEFINE_validator(request_timeout_ms, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(max_line, &baton::cli::ValidatePositive<int64_t>);

int main(int argc, char** argv) {
  baton::cli::SetFlagDefault("port", "7000");
  if (!baton::flags::InitServer(&argc, &argv,
                                "line protocol example on baton\n"
                                "usage: line_server [--port=N] ...")) {
    return 2;
  }
  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  baton::ReactorOptions options;
  options.threads = FLAGS_threads;
  options.max_connections = static_cast<size_t>(FLAGS_max_connections);
  options.max_retained_input = static_cast<size_t>(FLAGS_max_line);
  options.thread_name = "lines";
  // --address / --port, or --address=unix:/path.
  absl::StatusOr<baton::ListenOptions> listen = baton::flags::ListenFromFlags();
  if (!listen.ok()) {
    LOG(ERROR) << listen.status().message();
    return 2;
  }
  const absl::Duration timeout = absl::Milliseconds(FLAGS_request_timeout_ms);
  return baton::flags::ServeUntilSignal(
      options, *listen,
      [timeout](baton::Reactor*) -> baton::HandlerFactory {
        return [timeout] {
          return std::make_unique<baton::examples::LineHandler>(timeout);
        };
      },
      stop_signals, "(line protocol)");
}
