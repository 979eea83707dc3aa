// //client:bench — load generator for baton's servers (loopback only in
// tests; any address a user chooses otherwise).
//
//   bench --mode=barrier  --threads=N [--rounds=10 --size=13 --output=FILE]
//         [--tls --tls_ca=FILE --tls_server_name=NAME]
//   bench --mode=pingpong --threads=T --connections=C --duration=S [--size=64]
//         [--slow_connections=K --slow_byte=255 --round_trips=N]
//         [--tls --tls_ca=FILE --tls_server_name=NAME
//          --tls_new_handshake_per_request]
//   bench --mode=http     --threads=T --connections=C --requests=N
//         [--keepalive] [--tls --tls_ca=FILE --tls_server_name=NAME]
//   bench --mode=http     --requests=0 --duration=S [--warmup=W] ...
//   bench --mode=http     --rate=R --duration=S [--warmup=W] ...
//
// Every reply is verified; any mismatch, refused or reset connection or
// timeout makes the exit status non-zero. The work is in the client library
// (barrier.h, pingpong.h, http_load.h); this file parses flags and prints.
#include <gflags/gflags.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/barrier.h"
#include "client/flags.h"
#include "client/http_load.h"
#include "client/json_writer.h"
#include "client/net.h"
#include "client/pingpong.h"
#include "client/progress.h"
#include "client/report.h"
#include "client/summary.h"
#include "client/tls_client.h"
#include "lib/cli/parse_flags.h"
#include "lib/cli/validators.h"
#include "lib/tls/tls_context.h"

DEFINE_string(mode, "barrier", "barrier | pingpong | http");
DEFINE_string(host, "127.0.0.1",
              "server address (IPv4 or IPv6 literal, or a host name looked "
              "up at start), or a Unix socket: unix:/path or unix:@name "
              "(--port is then not used)");
DEFINE_int32(port, 12345, "server port (TCP)");
DEFINE_int32(threads, 1, "client threads");
DEFINE_int32(rounds, 10, "barrier: round trips per thread");
DEFINE_int32(size, 13,
             "barrier/pingpong: message size in bytes "
             "(pingpong uses 64 when left at 13)");
DEFINE_string(output, "", "barrier: write '<thread_id> <avg_us>' lines here");
DEFINE_int32(connections, 1, "pingpong/http: connections per thread");
DEFINE_double(duration, 5,
              "pingpong, and http with --requests=0 or --rate: seconds to "
              "measure (requests in flight at the end are waited for)");
DEFINE_double(warmup, 0,
              "pingpong, and http with --requests=0 or --rate: seconds of "
              "load before --duration whose round trips or requests are not "
              "counted");
DEFINE_int64(round_trips, 0,
             "pingpong: each connection stops after N round trips (warm-up "
             "ones included) and the run ends when all have: a fixed amount "
             "of work; --duration still caps it (0: run for --duration)");
DEFINE_int32(slow_connections, 0,
             "pingpong: the first K connections of each thread send slow "
             "messages (first byte --slow_byte), which a server run with "
             "--slow_us delays; fast and slow connections are reported apart "
             "(0..--connections)");
DEFINE_int32(slow_byte, 255,
             "pingpong: marker byte (0..255) of slow messages; must match the "
             "server's --slow_byte. No other byte sent equals it");
DEFINE_int64(requests, 10000,
             "http: total requests; 0: as many as fit in --duration seconds "
             "(after --warmup seconds not counted)");
DEFINE_double(rate, 0,
              "http: open loop: R new requests per second over all threads, "
              "each on a new connection (HTTP/1.1, Connection: close; with "
              "--tls a full handshake each), request i scheduled at "
              "t0 + i/R and timed from then; --connections caps the "
              "requests in flight per thread (a request due while it is "
              "full is 'late' and waits for a slot); runs for --duration "
              "after --warmup. Not with --keepalive. 0: closed loop");
DEFINE_bool(keepalive, false,
            "http: HTTP/1.1 keep-alive instead of a "
            "connection per HTTP/1.0 request");
DEFINE_string(path, "/", "http: request path");
DEFINE_int32(timeout_ms, 5000,
             "a connect or reply that takes longer than this is an error");
DEFINE_bool(json, false, "print the summary as one JSON object on stdout");
DEFINE_bool(tls, false,
            "speak TLS (http: HTTPS), verifying the server's certificate "
            "against --tls_ca and its name against --tls_server_name; every "
            "new connection makes a full handshake (no session resumption); "
            "barrier: the handshake and one untimed round trip are done "
            "before the barrier");
DEFINE_string(tls_ca, "",
              "--tls: trusted CA certificates (PEM file); empty: the system "
              "store");
DEFINE_string(tls_server_name, "",
              "--tls: name sent as SNI and checked in the server's "
              "certificate (an IP literal is checked against its IP "
              "entries); empty: --host");
DEFINE_bool(tls_new_handshake_per_request, false,
            "pingpong --tls: every round trip on a new connection with a new "
            "full handshake (its latency covers connect and handshake)");

namespace {

using baton::client::CountLine;
using baton::client::Endpoint;
using baton::client::JsonWriter;
using baton::client::LatencyJson;
using baton::client::LatencyText;

bool ValidMode(const char* flag, const std::string& v) {
  if (v == "barrier" || v == "pingpong" || v == "http") return true;
  std::fprintf(stderr, "--%s=%s: must be barrier, pingpong or http\n", flag,
               v.c_str());
  return false;
}

bool ValidPath(const char* flag, const std::string& v) {
  // The path goes into the request line verbatim.
  if (!v.empty() && v[0] == '/' &&
      v.find_first_of(" \r\n") == std::string::npos) {
    return true;
  }
  std::fprintf(stderr,
               "--%s=%s: must start with '/' and hold no spaces or "
               "line breaks\n",
               flag, v.c_str());
  return false;
}

// The client TLS context of --tls, --tls_ca and --tls_server_name; null
// without --tls.
absl::StatusOr<std::shared_ptr<const baton::tls::TlsContext>> TlsFromFlags() {
  if (!FLAGS_tls) return std::shared_ptr<const baton::tls::TlsContext>();
  baton::TlsClientOptions tls;
  tls.ca_file = FLAGS_tls_ca;
  tls.server_name =
      FLAGS_tls_server_name.empty() ? FLAGS_host : FLAGS_tls_server_name;
  absl::StatusOr<std::shared_ptr<const baton::tls::TlsContext>> context =
      baton::client::FullHandshakeContext(tls);
  if (!context.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls: ", context.status().message()));
  }
  return context;
}

// What a mode reports: its summary fields (for --json) and, if the run
// failed, why. Text output is printed by the mode itself.
struct Outcome {
  JsonWriter fields;
  std::string error;  // empty: every reply was verified
};

Outcome Failed(std::string error, JsonWriter fields = JsonWriter()) {
  return {std::move(fields), std::move(error)};
}

Outcome RunBarrierMode(const Endpoint& endpoint) {
  const absl::Status fds = baton::client::ReserveDescriptors(
      FLAGS_threads, absl::StrCat(FLAGS_threads, " threads"));
  if (!fds.ok()) return Failed(std::string(fds.message()));
  baton::client::BarrierProgress counts;
  baton::client::BarrierOptions o;
  o.endpoint = endpoint;
  o.threads = FLAGS_threads;
  o.rounds = FLAGS_rounds;
  o.size = static_cast<size_t>(FLAGS_size);
  o.timeout_ms = FLAGS_timeout_ms;
  o.progress = &counts;
  absl::StatusOr<std::shared_ptr<const baton::tls::TlsContext>> tls =
      TlsFromFlags();
  if (!tls.ok()) return Failed(std::string(tls.status().message()));
  o.tls = *std::move(tls);
  absl::StatusOr<baton::client::BarrierResult> r;
  {
    baton::client::ProgressPrinter progress([&counts, n = o.threads](double) {
      return counts.released.load()
                 ? absl::StrCat("released; ", counts.finished.load(), " of ", n,
                                " threads finished")
                 : absl::StrCat(counts.connected.load(), " of ", n,
                                " threads connected, waiting at the barrier");
    });
    r = RunBarrier(o);
  }
  if (!r.ok()) return Failed(std::string(r.status().message()));
  std::vector<double> avgs;
  for (const auto& t : r->threads) {
    if (t.error.empty()) avgs.push_back(t.avg_us);
  }
  const baton::client::Summary sum = baton::client::Summarize(avgs);
  Outcome out;
  out.fields.AddInt("threads", o.threads)
      .AddInt("rounds", o.rounds)
      .AddInt("size", FLAGS_size)
      .AddBool("tls", o.tls != nullptr)
      .AddInt("errors", r->errors)
      .AddDouble("wall_s", r->wall_s, 6)
      .AddObject("avg_us", JsonWriter()
                               .AddDouble("min", sum.min, 2)
                               .AddDouble("mean", sum.mean, 2)
                               .AddDouble("p50", sum.p50, 2)
                               .AddDouble("p99", sum.p99, 2)
                               .AddDouble("max", sum.max, 2));

  if (!FLAGS_output.empty()) {
    // One line per thread that finished, in thread id order (r->threads is
    // sorted by id), not in kecho's finishing order.
    std::ofstream file(FLAGS_output);
    for (const auto& t : r->threads) {
      if (t.error.empty()) file << t.id << " " << t.avg_us << "\n";
    }
    file.close();
    if (!file) return Failed("cannot write --output=" + FLAGS_output);
  }
  if (!FLAGS_json) {
    // A table of 64 rows is still readable; beyond that, use --output.
    if (o.threads <= 64 && sum.count > 0) {
      std::printf("thread  avg_us\n");
      for (const auto& t : r->threads) {
        std::printf("%6d  %s\n", t.id,
                    t.error.empty() ? absl::StrFormat("%.1f", t.avg_us).c_str()
                                    : "failed");
      }
    }
    std::printf(
        "barrier: %d threads x %d round trips of %d bytes%s, %d failed, "
        "wall %.3f s\n",
        o.threads, o.rounds, FLAGS_size, o.tls != nullptr ? " over TLS" : "",
        r->errors, r->wall_s);
    if (sum.count > 0) {
      std::printf(
          "per-thread average us (%zu threads): min %.1f  mean %.1f  "
          "p50 %.1f  p99 %.1f  max %.1f\n",
          sum.count, sum.min, sum.mean, sum.p50, sum.p99, sum.max);
    }
  }
  // Many threads usually fail for one reason: say each reason once.
  const std::vector<baton::client::ErrorGroup> groups = GroupErrors(*r);
  for (size_t i = 0; i < groups.size() && i < 5; ++i) {
    std::fprintf(stderr, "bench: %d thread%s (first: thread %d): %s\n",
                 groups[i].threads, groups[i].threads == 1 ? "" : "s",
                 groups[i].first_thread, groups[i].message.c_str());
  }
  if (groups.size() > 5) {
    std::fprintf(stderr, "bench: ... and %zu other distinct errors\n",
                 groups.size() - 5);
  }
  if (!groups.empty()) {
    out.error = absl::StrCat(r->errors, " of ", o.threads,
                             " threads failed; first: thread ",
                             groups[0].first_thread, ": ", groups[0].message);
  }
  return out;
}

// --threads x --connections sockets (pingpong and http).
absl::Status ReserveConnections() {
  return baton::client::ReserveDescriptors(
      int64_t{FLAGS_threads} * FLAGS_connections,
      absl::StrCat(FLAGS_threads, " threads x ", FLAGS_connections,
                   " connections"));
}

Outcome RunPingPongMode(const Endpoint& endpoint) {
  const absl::Status fds = ReserveConnections();
  if (!fds.ok()) return Failed(std::string(fds.message()));
  std::atomic<int64_t> done{0};
  baton::client::PingPongOptions o;
  o.endpoint = endpoint;
  o.threads = FLAGS_threads;
  o.connections = FLAGS_connections;
  o.size = static_cast<size_t>(
      gflags::GetCommandLineFlagInfoOrDie("size").is_default ? 64 : FLAGS_size);
  o.duration_s = FLAGS_duration;
  o.warmup_s = FLAGS_warmup;
  o.timeout_ms = FLAGS_timeout_ms;
  o.progress = &done;
  o.slow_connections = FLAGS_slow_connections;
  o.slow_byte = static_cast<unsigned char>(FLAGS_slow_byte);
  o.round_trips_per_connection = FLAGS_round_trips;
  o.tls_new_handshake_per_request = FLAGS_tls_new_handshake_per_request;
  absl::StatusOr<std::shared_ptr<const baton::tls::TlsContext>> tls =
      TlsFromFlags();
  if (!tls.ok()) return Failed(std::string(tls.status().message()));
  o.tls = *std::move(tls);
  if (o.slow_connections > o.connections) {
    return Failed(absl::StrCat("--slow_connections=", o.slow_connections,
                               " exceeds --connections=", o.connections,
                               " (both count per thread)"));
  }
  absl::StatusOr<baton::client::PingPongResult> r;
  {
    baton::client::ProgressPrinter progress(CountLine("round trips", &done));
    r = RunPingPong(o);
  }
  Outcome out;
  out.fields.AddInt("threads", o.threads)
      .AddInt("connections", o.connections)
      .AddInt("size", static_cast<int64_t>(o.size))
      .AddInt("all_round_trips", done.load())
      .AddBool("tls", o.tls != nullptr)
      .AddBool("tls_new_handshake_per_request",
               o.tls != nullptr && o.tls_new_handshake_per_request);
  if (!r.ok()) return Failed(std::string(r.status().message()), out.fields);
  out.fields.AddInt("round_trips", r->round_trips)
      .AddDouble("seconds", r->seconds)
      .AddDouble("rate", r->rate(), 1)
      .AddObject("latency_us", LatencyJson(r->latency))
      .AddInt("slow_connections", o.slow_connections)
      .AddInt("slow_byte", o.slow_byte);
  // Fast and slow connections apart (head-of-line benchmark). Always
  // present, so scripts can read "fast" whether or not any are slow.
  for (const auto* cls : {&r->fast, &r->slow}) {
    JsonWriter j;
    j.AddInt("connections", cls->connections)
        .AddInt("round_trips", cls->round_trips)
        .AddDouble("rate", r->rate(*cls), 1)
        .AddObject("latency_us", LatencyJson(cls->latency));
    out.fields.AddObject(cls == &r->fast ? "fast" : "slow", j);
  }
  if (!FLAGS_json) {
    std::printf(
        "pingpong: %d threads x %d connections, %zu bytes: %lld round trips "
        "in %.2f s = %.0f/s\n%s\n",
        o.threads, o.connections, o.size,
        static_cast<long long>(r->round_trips), r->seconds, r->rate(),
        LatencyText(r->latency).c_str());
    if (o.slow_connections > 0) {
      for (const auto* cls : {&r->fast, &r->slow}) {
        std::printf("%s: %d connections: %lld round trips = %.0f/s\n  %s\n",
                    cls == &r->fast ? "fast" : "slow", cls->connections,
                    static_cast<long long>(cls->round_trips), r->rate(*cls),
                    LatencyText(cls->latency).c_str());
      }
    }
  }
  if (r->round_trips == 0) out.error = "no round trip completed";
  return out;
}

Outcome RunHttpMode(const Endpoint& endpoint) {
  const absl::Status fds = ReserveConnections();
  if (!fds.ok()) return Failed(std::string(fds.message()));
  std::atomic<int64_t> done{0};
  baton::client::HttpLoadOptions o;
  o.endpoint = endpoint;
  o.host_header = endpoint.host_header;
  o.path = FLAGS_path;
  o.threads = FLAGS_threads;
  o.connections = FLAGS_connections;
  o.rate = FLAGS_rate;
  o.requests = o.rate > 0 ? 0 : FLAGS_requests;
  const bool timed = o.requests == 0;
  o.duration_s = timed ? FLAGS_duration : 0;
  o.warmup_s = timed ? FLAGS_warmup : 0;
  o.keepalive = FLAGS_keepalive;
  o.timeout_ms = FLAGS_timeout_ms;
  o.progress = &done;
  absl::StatusOr<std::shared_ptr<const baton::tls::TlsContext>> tls =
      TlsFromFlags();
  if (!tls.ok()) return Failed(std::string(tls.status().message()));
  o.tls = *std::move(tls);
  absl::StatusOr<baton::client::HttpLoadResult> r;
  {
    baton::client::ProgressPrinter progress(CountLine("requests", &done));
    r = RunHttpLoad(o);
  }
  if (!r.ok()) return Failed(std::string(r.status().message()));
  Outcome out;
  out.fields.AddInt("threads", o.threads)
      .AddInt("connections", o.connections)
      .AddBool("keepalive", o.keepalive)
      .AddBool("tls", o.tls != nullptr)
      .AddDouble("target_rate", o.rate, 1)
      .AddDouble("duration", o.duration_s, 3)
      .AddDouble("warmup", o.warmup_s, 3)
      .AddInt("all_requests", done.load())
      .AddInt("requests", r->requests())
      .AddInt("good", r->good)
      .AddInt("bad", r->bad)
      .AddInt("errors", r->errors)
      .AddInt("late", r->late)
      .AddInt("body_bytes", r->body_bytes)
      .AddDouble("seconds", r->seconds)
      .AddDouble("rate", r->rate(), 1)
      .AddObject("latency_us", LatencyJson(r->latency));
  if (o.rate > 0) {
    out.fields.AddObject("send_lag_us", LatencyJson(r->send_lag));
  }
  if (!FLAGS_json) {
    // htstress's summary, plus latency.
    if (o.rate > 0) {
      std::printf(
          "http: paced at %.1f new connections/s over %d threads, cap %d in "
          "flight per thread: %lld late\nsend lag (schedule to send), %s\n",
          o.rate, o.threads, o.connections, static_cast<long long>(r->late),
          LatencyText(r->send_lag).c_str());
    }
    std::printf(
        "http: requests %lld  good %lld  bad %lld  socket errors %lld\n"
        "seconds %.3f  requests/sec %.0f  body bytes %lld\n%s\n",
        static_cast<long long>(r->requests()), static_cast<long long>(r->good),
        static_cast<long long>(r->bad), static_cast<long long>(r->errors),
        r->seconds, r->rate(), static_cast<long long>(r->body_bytes),
        LatencyText(r->latency).c_str());
  }
  if (r->bad + r->errors > 0) {
    out.error = absl::StrCat(r->bad + r->errors, " of ", r->requests(),
                             " requests failed; first: ", r->first_problem);
  } else if (r->requests() == 0) {
    out.error = "no request was counted";
  }
  return out;
}

}  // namespace

DEFINE_validator(mode, &ValidMode);
DEFINE_validator(path, &ValidPath);
DEFINE_validator(host, &baton::cli::ValidateAddressOrUnix);
DEFINE_validator(port,
                 &baton::cli::ValidatePort<baton::cli::PortUse::kConnect>);
DEFINE_validator(threads, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(rounds, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(size, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(connections, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(timeout_ms, &baton::cli::ValidatePositive<int32_t>);
DEFINE_validator(duration, &baton::cli::ValidatePositive<double>);
DEFINE_validator(warmup, &baton::cli::ValidateNonNegative<double>);
DEFINE_validator(requests, &baton::cli::ValidateNonNegative<int64_t>);
DEFINE_validator(rate, &baton::cli::ValidateNonNegative<double>);
DEFINE_validator(slow_connections, &baton::cli::ValidateNonNegative<int32_t>);
DEFINE_validator(slow_byte, &baton::cli::ValidateByte);
DEFINE_validator(round_trips, &baton::cli::ValidateNonNegative<int64_t>);

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "load generator for echo and HTTP servers\n"
      "  bench --mode=barrier --threads=N [--rounds=10 --size=13 "
      "--output=FILE] [--tls --tls_ca=FILE]\n"
      "  bench --mode=pingpong --threads=T --connections=C --duration=S "
      "[--slow_connections=K --round_trips=N]\n"
      "    [--tls --tls_ca=FILE --tls_new_handshake_per_request]\n"
      "  bench --mode=http --threads=T --connections=C --requests=N "
      "[--keepalive]\n"
      "    [--tls --tls_ca=FILE --tls_server_name=NAME]\n"
      "  bench --mode=http --requests=0 --duration=S [--warmup=W] "
      "[--keepalive] ...\n"
      "  bench --mode=http --rate=R --duration=S [--warmup=W] "
      "[--connections=CAP] ...");
  baton::cli::ParseFlags(&argc, &argv);
  if (argc > 1) {
    std::fprintf(stderr, "bench: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  if ((FLAGS_tls_new_handshake_per_request || !FLAGS_tls_ca.empty() ||
       !FLAGS_tls_server_name.empty()) &&
      !FLAGS_tls) {
    std::fprintf(stderr, "bench: the --tls_* flags need --tls\n");
    return 2;
  }
  if (FLAGS_tls_new_handshake_per_request && FLAGS_mode != "pingpong") {
    std::fprintf(stderr,
                 "bench: --tls_new_handshake_per_request is for "
                 "--mode=pingpong (--mode=http: leave out --keepalive)\n");
    return 2;
  }
  baton::client::RunShapeFlags shape;
  shape.mode = FLAGS_mode;
  shape.requests = FLAGS_requests;
  shape.requests_given =
      !gflags::GetCommandLineFlagInfoOrDie("requests").is_default;
  shape.duration_given =
      !gflags::GetCommandLineFlagInfoOrDie("duration").is_default;
  shape.warmup_given =
      !gflags::GetCommandLineFlagInfoOrDie("warmup").is_default;
  shape.rate = FLAGS_rate;
  shape.keepalive = FLAGS_keepalive;
  const absl::Status valid_shape = baton::client::CheckRunShape(shape);
  if (!valid_shape.ok()) {
    std::fprintf(stderr, "bench: %s\n",
                 std::string(valid_shape.message()).c_str());
    return 2;
  }
  // Both parts were validated above; a host name is looked up now.
  const absl::StatusOr<Endpoint> resolved =
      baton::client::ResolveEndpoint(FLAGS_host, FLAGS_port);
  if (!resolved.ok()) {
    std::fprintf(stderr, "bench: --host=%s: %s\n", FLAGS_host.c_str(),
                 std::string(resolved.status().message()).c_str());
    return 2;
  }
  const Endpoint& endpoint = *resolved;
  const Outcome out = FLAGS_mode == "pingpong" ? RunPingPongMode(endpoint)
                      : FLAGS_mode == "http"   ? RunHttpMode(endpoint)
                                               : RunBarrierMode(endpoint);
  if (!out.error.empty()) {
    std::fprintf(stderr, "bench: FAILED: %s\n", out.error.c_str());
  }
  if (FLAGS_json) {
    JsonWriter json;
    json.AddString("mode", FLAGS_mode).AddBool("ok", out.error.empty());
    if (!out.error.empty()) json.AddString("error", out.error);
    std::printf("%s\n", json.Merge(out.fields).str().c_str());
  }
  return out.error.empty() ? 0 : 1;
}
