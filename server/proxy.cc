// //server:proxy — a TCP proxy on baton's public API: every connection
// accepted on --address:--port is relayed byte for byte to --upstream.
// Either side may be a Unix socket (--address=unix:/path,
// --upstream=unix:/path), and either side may speak TLS: --tls_cert and
// --tls_key terminate TLS from the clients, --upstream_tls (with
// --upstream_ca, --upstream_server_name, --upstream_tls_resumption)
// originates TLS to the upstream, resuming sessions by default.
//
//   bazel run //server:proxy -- --port=8000 --upstream=127.0.0.1:12345
//   bazel run //server:proxy -- --port=8443 --tls_cert=cert.pem
//       --tls_key=key.pem --upstream=127.0.0.1:12345   (one line)
//
// Back-pressure each way (a slow reader on either side pauses reading from
// the other), a process-wide bound on queued bytes (--max_queued_bytes),
// half-close passed on both ways; an upstream that refuses closes its
// client, one that dies mid-transfer resets it, each with a (rate-limited)
// log line. Logs "listening on ADDR:PORT" once ready.
//
// Stopping (SIGINT or SIGTERM), after HAProxy's soft stop:
//   1. stop accepting (Reactor::StopAccepting): connects are refused;
//   2. let every pair finish by itself, for up to --drain_timeout_ms (a
//      second signal ends the wait at once);
//   3. cut the pairs still open with a reset on both sides, never a FIN a
//      client could take for the end of a complete stream, and log how
//      many were cut;
//   4. stop the reactor and log the counters.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <limits>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "baton/reactor.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "lib/net/address.h"
#include "lib/tls/tls_context.h"
#include "server/flags.h"
#include "server/proxy_handler.h"
#include "server/serve.h"

DECLARE_int64(drain_timeout_ms);  // server/serve.cc

DEFINE_string(upstream, "",
              "HOST:PORT to relay to (IP:PORT, [IPv6]:PORT, or a host name "
              "looked up for each client without blocking), or a Unix "
              "socket: unix:/path or unix:@name");
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
DEFINE_int64(max_queued_bytes, int64_t{256} << 20,
             "process-wide bound on the bytes queued in the proxy (all "
             "pairs, both ways): above it, a side with bytes queued at its "
             "peer stops reading until they drain");

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
DEFINE_string(tls_cert, "",
              "terminate TLS from the clients: the proxy's certificate "
              "chain (PEM); needs --tls_key");
DEFINE_string(tls_key, "",
              "terminate TLS: the private key (PEM, unencrypted) of "
              "--tls_cert");
DEFINE_bool(upstream_tls, false,
            "speak TLS to the upstream (the upstream's certificate is "
            "verified against --upstream_ca)");
DEFINE_string(upstream_ca, "",
              "with --upstream_tls: the CA certificates (PEM) the upstream's "
              "certificate must chain to (empty: the system's store)");
DEFINE_string(upstream_server_name, "",
              "with --upstream_tls: the name sent as SNI and checked against "
              "the upstream's certificate (empty: the host of --upstream)");
DEFINE_bool(upstream_tls_resumption, true,
            "with --upstream_tls: offer the upstream a session from an "
            "earlier upstream connection (TLS session tickets), so repeat "
            "connections skip the certificate and signatures; false: a full "
            "handshake every time");
DEFINE_validator(high_water, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(max_queued_bytes, &baton::cli::ValidatePositive<int64_t>);
DEFINE_validator(read_buffer_size, &baton::flags::ValidateReadBufferSize);

namespace {

// Steps 2-4 of the stop (see the top of this file); returns the exit status.
int StopSoftly(baton::Reactor* reactor, baton::proxy::Proxy* proxy,
               const sigset_t& stop_signals, int signal) {
  reactor->StopAccepting();
  LOG(INFO) << "signal " << signal << ": no longer accepting; draining "
            << proxy->live_pairs() << " pairs (up to " << FLAGS_drain_timeout_ms
            << " ms)";
  const absl::Time start = absl::Now();
  const absl::Time deadline =
      start + absl::Milliseconds(FLAGS_drain_timeout_ms);
  while (proxy->live_pairs() > 0 && absl::Now() < deadline) {
    if (baton::flags::WaitForSignalFor(stop_signals, absl::Milliseconds(10)) >
        0) {
      LOG(INFO) << "second signal: cutting pairs now";
      break;
    }
  }
  const size_t cut = proxy->CutAll();
  if (cut > 0) {
    LOG(WARNING) << "drained for " << absl::Now() - start << "; cut " << cut
                 << " pairs still open with a reset";
  } else {
    LOG(INFO) << "drained for " << absl::Now() - start
              << "; every pair finished";
  }
  reactor->Stop();
  reactor->Wait();
  LOG(INFO) << "stopped; " << reactor->Counters().ToString() << "; "
            << proxy->Counters().ToString();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  baton::cli::SetFlagDefault("port", "8000");
  if (!baton::flags::InitServer(
          &argc, &argv,
          "TCP proxy on baton\n"
          "usage: proxy --upstream=HOST:PORT|unix:/path [--port=N] "
          "[--address=A|unix:/path] [--tls_cert=PEM --tls_key=PEM] "
          "[--upstream_tls [--upstream_ca=PEM] [--upstream_server_name=N] "
          "[--upstream_tls_resumption=false]] "
          "[--threads=N] ...")) {
    return 2;
  }
  baton::proxy::ProxyConfig config;
  if (absl::Status s =
          baton::proxy::ParseUpstream(FLAGS_upstream, &config.upstream);
      !s.ok()) {
    LOG(ERROR) << "--upstream=" << FLAGS_upstream << ": " << s.message();
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const baton::TlsClientOptions>> upstream_tls =
      baton::flags::UpstreamTlsFromFlags(
          FLAGS_upstream_tls, FLAGS_upstream_ca, FLAGS_upstream_server_name,
          FLAGS_upstream_tls_resumption,
          config.upstream.unix_path.empty() ? config.upstream.address : "");
  if (!upstream_tls.ok()) {
    LOG(ERROR) << upstream_tls.status().message();
    return 2;
  }
  if (*upstream_tls != nullptr) {
    // Checked now (the CA file's contents too), not at the first client.
    if (absl::Status s =
            baton::tls::TlsContext::ForClient(**upstream_tls).status();
        !s.ok()) {
      LOG(ERROR) << "--upstream_tls: " << s.message();
      return 2;
    }
  }
  config.upstream.tls = *std::move(upstream_tls);
  config.upstream.timeout = absl::Milliseconds(FLAGS_connect_timeout_ms);
  config.upstream.max_attempts = FLAGS_connect_attempts;
  config.high_water = static_cast<size_t>(FLAGS_high_water);
  config.max_queued = static_cast<size_t>(FLAGS_max_queued_bytes);
  const sigset_t stop_signals = baton::flags::BlockStopSignals();

  baton::ReactorOptions options;
  options.threads = FLAGS_threads;
  baton::flags::HandshakeThreadsFromFlags(&options);
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
  options.dns_servers = FLAGS_dns_servers;
  absl::StatusOr<baton::ListenOptions> listen = baton::flags::ListenFromFlags();
  if (!listen.ok()) {
    LOG(ERROR) << listen.status().message();
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const baton::TlsServerOptions>> tls =
      baton::flags::TlsFromFlags(FLAGS_tls_cert, FLAGS_tls_key);
  if (!tls.ok()) {
    LOG(ERROR) << tls.status().message();
    return 2;
  }
  listen->tls = *std::move(tls);

  absl::StatusOr<std::unique_ptr<baton::Reactor>> reactor =
      baton::Reactor::Create(options);
  if (!reactor.ok()) {
    LOG(ERROR) << "bad options: " << reactor.status();
    return 2;
  }
  // Declared after the reactor, destroyed before it: StopSoftly stops and
  // waits for the reactor first, and no connection exists before Start.
  baton::proxy::Proxy proxy(reactor->get(), config);
  absl::StatusOr<int> port = (*reactor)->Listen(*listen, proxy.ClientFactory());
  if (!port.ok()) {
    LOG(ERROR) << "cannot listen on "
               << baton::flags::ListenText(*listen, listen->port) << ": "
               << port.status().message();
    return 1;
  }
  if (absl::Status s = (*reactor)->Start(); !s.ok()) {
    LOG(ERROR) << "cannot start: " << s;
    return 1;
  }
  LOG(INFO) << "listening on " << baton::flags::ListenText(*listen, *port)
            << (listen->tls != nullptr ? " (TLS)" : "") << " (proxy to "
            << FLAGS_upstream
            << (config.upstream.tls != nullptr ? " over TLS" : "") << ") with "
            << (*reactor)->options().threads << " threads";
  const int signal = baton::flags::WaitForSignal(stop_signals);
  return StopSoftly(reactor->get(), &proxy, stop_signals, signal);
}
