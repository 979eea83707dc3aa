// //server:proxy — a TCP proxy on baton's public API: every connection
// accepted on --address:--port is relayed byte for byte to --upstream.
//
//   bazel run //server:proxy -- --port=8000 --upstream=127.0.0.1:12345
//
// Back-pressure each way (a slow reader on either side pauses reading from
// the other), half-close passed on both ways, an upstream that refuses or
// dies closes its client with a log line. Logs "listening on ADDR:PORT"
// once ready; SIGINT or SIGTERM drain (--drain_timeout_ms) and stop.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <limits>
#include <memory>

#include "absl/time/time.h"
#include "baton/reactor.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "server/flags.h"
#include "server/proxy_handler.h"
#include "server/serve.h"

DEFINE_string(upstream, "", "HOST:PORT to relay to (an IP literal; [v6]:port)");
DEFINE_int64(connect_timeout_ms, 5000,
             "give up on an upstream connect after this long");
DEFINE_int32(connect_attempts, 1,
             "upstream connect attempts per client (randomised exponential "
             "back-off between them)");
DEFINE_int64(idle_timeout_ms, 0,
             "close connections idle for this long (0: never)");
DEFINE_int64(write_timeout_ms, 0,
             "abort connections whose output could not be sent for this "
             "long because the peer stopped reading (0: never)");
DEFINE_int64(high_water, 1 << 20,
             "stop reading a side while its peer has this many bytes queued");

DEFINE_bool(park_relays, true,
            "Keep a side that relayed a message off epoll until the answer "
            "is written to it (ReactorOptions::park_relays): no epoll_ctl "
            "per relayed message under load");
DEFINE_validator(connect_timeout_ms, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(connect_attempts, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(idle_timeout_ms, &baton::cli::ValidateNonNegative<int64_t>);
DEFINE_validator(write_timeout_ms, &baton::cli::ValidateNonNegative<int64_t>);
// 32 KiB measured best for bulk transfer here (1 MiB ping-pong through
// the proxy: 16 KiB 491-568, 32 KiB 752-907, 64 KiB 550-648 MB/s each way):
// smaller chunks cost more system calls, larger ones overlap less with
// the receiver.
DEFINE_int64(read_buffer_size, 32 << 10,
             "bytes read per read(2): the most one side passes on to the "
             "other before the next read (512 B..64 MiB)");
DEFINE_validator(high_water, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(read_buffer_size, &baton::flags::ValidateReadBufferSize);

int main(int argc, char** argv) {
  baton::cli::SetFlagDefault("port", "8000");
  if (!baton::flags::InitServer(
          &argc, &argv,
          "TCP proxy on baton\n"
          "usage: proxy --upstream=HOST:PORT [--port=N] [--address=A] "
          "[--threads=N] ...")) {
    return 2;
  }
  baton::proxy::ProxyConfig config;
  if (absl::Status s = baton::proxy::ParseUpstream(FLAGS_upstream,
                                                   &config.upstream);
      !s.ok()) {
    LOG(ERROR) << "--upstream: " << s.message();
    return 2;
  }
  config.upstream.timeout = absl::Milliseconds(FLAGS_connect_timeout_ms);
  config.upstream.max_attempts = FLAGS_connect_attempts;
  config.high_water = static_cast<size_t>(FLAGS_high_water);
  const sigset_t stop_signals = baton::flags::BlockStopSignals();

  baton::ReactorOptions options;
  options.threads = FLAGS_threads;
  options.idle_timeout = absl::Milliseconds(FLAGS_idle_timeout_ms);
  options.write_timeout = absl::Milliseconds(FLAGS_write_timeout_ms);
  options.max_connections = static_cast<size_t>(FLAGS_max_connections);
  // The proxy applies back-pressure across the pair itself. The reactor's
  // own high-water mark would stop a side reading because of the bytes
  // queued *to* it (the other direction), which can deadlock a peer that
  // writes before it reads.
  options.output_high_water = std::numeric_limits<size_t>::max() / 2;
  options.thread_name = "proxy";
  options.read_buffer_size = static_cast<size_t>(FLAGS_read_buffer_size);
  options.park_relays = FLAGS_park_relays;
  baton::ListenOptions listen;
  listen.address = FLAGS_address;
  listen.port = FLAGS_port;
  return baton::flags::ServeUntilSignal(
      options, listen,
      [&config](baton::Reactor* reactor) {
        return baton::proxy::ClientFactory(reactor, &config);
      },
      stop_signals, "(proxy to " + FLAGS_upstream + ")");
}
