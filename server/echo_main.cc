// Internal (servers): EchoMain and the echo server's flags.
#include "server/echo_main.h"

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include "absl/time/time.h"
#include "baton/reactor.h"
#include "lib/cli/validators.h"
#include "server/echo_handler.h"
#include "server/flags.h"
#include "server/serve.h"

DEFINE_int64(idle_timeout_ms, 0,
             "close connections idle for this long (0: never)");
DEFINE_int64(write_timeout_ms, 0,
             "abort connections whose replies could not be sent for this "
             "long because the client stopped reading (0: never)");
DEFINE_int32(max_events, 64, "events taken per epoll_wait");
DEFINE_int64(output_high_water, 4 << 20,
             "stop reading from a peer with this many reply bytes unsent");

DEFINE_int32(reread_rounds, -1,
             "re-read a served connection behind the other ready work at "
             "most this many times in a row before re-arming it (-1: while "
             "each re-read finds data; 0: re-arm at once)");

DEFINE_string(tls_cert, "",
              "serve TLS: the server's certificate chain (PEM); needs "
              "--tls_key");
DEFINE_string(tls_key, "",
              "serve TLS: the private key (PEM, unencrypted) of --tls_cert");

DEFINE_validator(idle_timeout_ms, &baton::cli::ValidateNonNegative<int64_t>);
DEFINE_validator(write_timeout_ms, &baton::cli::ValidateNonNegative<int64_t>);
DEFINE_validator(max_events, &baton::flags::ValidateMaxEvents);
DEFINE_validator(output_high_water, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(reread_rounds, &baton::flags::ValidateRounds);

namespace baton {

int EchoMain(int argc, char** argv, const EchoMainHooks& hooks) {
  const std::string usage =
      !hooks.usage.empty()
          ? hooks.usage
          : "echo server on baton's leader/followers epoll reactor\n"
            "usage: echo [--port=N] [--address=A | --address=unix:/path] "
            "[--threads=N] ...";
  if (!flags::InitServer(&argc, &argv, usage.c_str())) return 2;

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t stop_signals = flags::BlockStopSignals();

  ReactorOptions options;
  options.threads = FLAGS_threads;
  baton::flags::HandshakeThreadsFromFlags(&options);
  options.idle_timeout = absl::Milliseconds(FLAGS_idle_timeout_ms);
  options.write_timeout = absl::Milliseconds(FLAGS_write_timeout_ms);
  options.max_connections = static_cast<size_t>(FLAGS_max_connections);
  options.max_events = FLAGS_max_events;
  options.output_high_water = static_cast<size_t>(FLAGS_output_high_water);
  options.reread_rounds = FLAGS_reread_rounds;
  options.thread_name = "echo";
  absl::StatusOr<ListenOptions> listen = flags::ListenFromFlags();
  if (!listen.ok()) {
    LOG(ERROR) << listen.status().message();
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const TlsServerOptions>> tls =
      flags::TlsFromFlags(FLAGS_tls_cert, FLAGS_tls_key);
  if (!tls.ok()) {
    LOG(ERROR) << tls.status().message();
    return 2;
  }
  listen->tls = *std::move(tls);
  const HandlerFactory factory =
      hooks.handlers ? hooks.handlers() : EchoHandlerFactory();
  const int status = flags::ServeUntilSignal(
      options, *listen, [&factory](Reactor*) { return factory; }, stop_signals,
      "(echo)");
  if (hooks.on_stop) hooks.on_stop();
  return status;
}

}  // namespace baton
