// //client:bench — load generator for baton's servers (loopback only in
// tests; any address a user chooses otherwise).
//
//   bench --mode=barrier  --threads=N [--rounds=10 --size=13 --output=FILE]
//   bench --mode=pingpong --threads=T --connections=C --duration=S [--size=64]
//   bench --mode=http     --threads=T --connections=C --requests=N [--keepalive]
//
// Every reply is verified; any mismatch, refused or reset connection or
// timeout makes the exit status non-zero.
#include <gflags/gflags.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/barrier.h"
#include "client/http_load.h"
#include "client/net.h"
#include "client/pingpong.h"

DEFINE_string(mode, "barrier", "barrier | pingpong | http");
DEFINE_string(host, "127.0.0.1", "server address (IPv4 or IPv6 literal)");
DEFINE_int32(port, 12345, "server port");
DEFINE_int32(threads, 1, "client threads");
DEFINE_int32(rounds, 10, "barrier: round trips per thread");
DEFINE_int32(size, 13, "barrier/pingpong: message size in bytes "
                       "(pingpong uses 64 when left at 13)");
DEFINE_string(output, "", "barrier: write '<thread_id> <avg_us>' lines here");
DEFINE_int32(connections, 1, "pingpong/http: connections per thread");
DEFINE_double(duration, 5, "pingpong: seconds to measure");
DEFINE_double(warmup, 0, "pingpong: seconds of load before measuring");
DEFINE_int64(requests, 10000, "http: total requests");
DEFINE_bool(keepalive, false, "http: HTTP/1.1 keep-alive instead of a "
                              "connection per HTTP/1.0 request");
DEFINE_string(path, "/", "http: request path");
DEFINE_int32(timeout_ms, 5000, "give up on a reply after this long");
DEFINE_bool(json, false, "print the summary as one JSON object on stdout");

namespace {

using baton::client::Endpoint;
using baton::client::Histogram;

int Fail(const std::string& message) {
  std::fprintf(stderr, "bench: %s\n", message.c_str());
  return 1;
}

// Prints "progress: ..." lines on stderr every second, starting after two
// seconds, until destroyed.
class Progress {
 public:
  Progress(const char* unit, std::atomic<int64_t>* count)
      : thread_([this, unit, count] {
          std::unique_lock<std::mutex> lock(mu_);
          int64_t last = 0;
          for (int s = 1; !cv_.wait_for(lock, std::chrono::seconds(1),
                                        [this] { return done_; });
               ++s) {
            const int64_t now = count->load();
            if (s >= 2) {
              std::fprintf(stderr, "progress: %ds, %lld %s (%lld/s)\n", s,
                           static_cast<long long>(now), unit,
                           static_cast<long long>(now - last));
            }
            last = now;
          }
        }) {}
  ~Progress() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

std::string LatencyJson(const Histogram& h) {
  return absl::StrFormat(
      "\"latency_us\":{\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
      "\"p999\":%.2f,\"max\":%.2f}",
      h.mean() / 1e3, h.Percentile(0.5) / 1e3, h.Percentile(0.9) / 1e3,
      h.Percentile(0.99) / 1e3, h.Percentile(0.999) / 1e3, h.max() / 1e3);
}

std::string LatencyText(const Histogram& h) {
  return absl::StrFormat(
      "latency us: mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
      "max %.1f",
      h.mean() / 1e3, h.Percentile(0.5) / 1e3, h.Percentile(0.9) / 1e3,
      h.Percentile(0.99) / 1e3, h.Percentile(0.999) / 1e3, h.max() / 1e3);
}

bool CheckFileLimit(int64_t needed) {
  const int64_t limit = baton::client::RaiseFileLimit(needed + 64);
  if (limit < needed + 16) {
    std::fprintf(stderr,
                 "bench: need about %lld file descriptors but the limit is "
                 "%lld (raise it with ulimit -n)\n",
                 static_cast<long long>(needed + 16),
                 static_cast<long long>(limit));
    return false;
  }
  return true;
}

int RunBarrierMode(const Endpoint& endpoint) {
  if (!CheckFileLimit(FLAGS_threads)) return 1;
  baton::client::BarrierOptions o;
  o.endpoint = endpoint;
  o.threads = FLAGS_threads;
  o.rounds = FLAGS_rounds;
  o.size = static_cast<size_t>(FLAGS_size);
  o.timeout_ms = FLAGS_timeout_ms;
  absl::StatusOr<baton::client::BarrierResult> r = RunBarrier(o);
  if (!r.ok()) return Fail(std::string(r.status().message()));
  std::vector<double> avgs;
  for (const auto& t : r->threads) {
    if (t.error.empty()) avgs.push_back(t.avg_us);
  }
  std::sort(avgs.begin(), avgs.end());
  auto pct = [&](double q) {
    if (avgs.empty()) return 0.0;
    const size_t i = std::min(avgs.size() - 1,
                              static_cast<size_t>(q * (avgs.size() - 1) + 0.5));
    return avgs[i];
  };
  double mean = 0;
  for (double a : avgs) mean += a;
  if (!avgs.empty()) mean /= avgs.size();

  if (!FLAGS_output.empty()) {
    std::ofstream out(FLAGS_output);
    for (const auto& t : r->threads) {
      if (t.error.empty()) out << t.id << " " << t.avg_us << "\n";
    }
    if (!out) return Fail("cannot write " + FLAGS_output);
  }
  for (const auto& t : r->threads) {
    if (!t.error.empty()) {
      std::fprintf(stderr, "bench: thread %d: %s\n", t.id, t.error.c_str());
    }
  }
  if (FLAGS_json) {
    std::printf(
        "{\"mode\":\"barrier\",\"threads\":%d,\"rounds\":%d,\"size\":%d,"
        "\"errors\":%d,\"wall_s\":%.6f,\"avg_us\":{\"min\":%.2f,\"mean\":%.2f,"
        "\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
        FLAGS_threads, FLAGS_rounds, FLAGS_size, r->errors, r->wall_s,
        pct(0), mean, pct(0.5), pct(0.99), pct(1));
  } else {
    if (FLAGS_threads <= 64) {
      std::printf("thread  avg_us\n");
      for (const auto& t : r->threads) {
        std::printf("%6d  %s\n", t.id,
                    t.error.empty() ? absl::StrFormat("%.1f", t.avg_us).c_str()
                                    : "error");
      }
    }
    std::printf(
        "barrier: %d threads x %d round trips of %d bytes, %d errors, "
        "wall %.3f s\nper-thread average us: min %.1f  mean %.1f  p50 %.1f  "
        "p99 %.1f  max %.1f\n",
        FLAGS_threads, FLAGS_rounds, FLAGS_size, r->errors, r->wall_s, pct(0),
        mean, pct(0.5), pct(0.99), pct(1));
  }
  return r->errors == 0 ? 0 : 1;
}

int RunPingPongMode(const Endpoint& endpoint) {
  if (!CheckFileLimit(int64_t{FLAGS_threads} * FLAGS_connections)) return 1;
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
  absl::StatusOr<baton::client::PingPongResult> r;
  {
    Progress progress("round trips", &done);
    r = RunPingPong(o);
  }
  if (!r.ok()) return Fail(std::string(r.status().message()));
  if (FLAGS_json) {
    std::printf(
        "{\"mode\":\"pingpong\",\"threads\":%d,\"connections\":%d,"
        "\"size\":%zu,\"round_trips\":%lld,\"all_round_trips\":%lld,"
        "\"seconds\":%.3f,\"rate\":%.1f,%s}\n",
        o.threads, o.connections, o.size,
        static_cast<long long>(r->round_trips),
        static_cast<long long>(done.load()), r->seconds, r->rate(),
        LatencyJson(r->latency).c_str());
  } else {
    std::printf(
        "pingpong: %d threads x %d connections, %zu bytes: %lld round trips "
        "in %.2f s = %.0f/s\n%s\n",
        o.threads, o.connections, o.size,
        static_cast<long long>(r->round_trips), r->seconds, r->rate(),
        LatencyText(r->latency).c_str());
  }
  return r->round_trips > 0 ? 0 : Fail("no round trip completed");
}

int RunHttpMode(const Endpoint& endpoint) {
  if (!CheckFileLimit(int64_t{FLAGS_threads} * FLAGS_connections)) return 1;
  std::atomic<int64_t> done{0};
  baton::client::HttpLoadOptions o;
  o.endpoint = endpoint;
  o.host_header = FLAGS_host;
  o.path = FLAGS_path;
  o.threads = FLAGS_threads;
  o.connections = FLAGS_connections;
  o.requests = FLAGS_requests;
  o.keepalive = FLAGS_keepalive;
  o.timeout_ms = FLAGS_timeout_ms;
  o.progress = &done;
  absl::StatusOr<baton::client::HttpLoadResult> r;
  {
    Progress progress("requests", &done);
    r = RunHttpLoad(o);
  }
  if (!r.ok()) return Fail(std::string(r.status().message()));
  if (FLAGS_json) {
    std::printf(
        "{\"mode\":\"http\",\"threads\":%d,\"connections\":%d,"
        "\"keepalive\":%s,\"requests\":%lld,\"good\":%lld,\"bad\":%lld,"
        "\"errors\":%lld,\"seconds\":%.3f,\"rate\":%.1f,%s}\n",
        o.threads, o.connections, o.keepalive ? "true" : "false",
        static_cast<long long>(o.requests), static_cast<long long>(r->good),
        static_cast<long long>(r->bad), static_cast<long long>(r->errors),
        r->seconds, r->rate(), LatencyJson(r->latency).c_str());
  } else {
    std::printf(
        "http: requests %lld  good %lld  bad %lld  socket errors %lld\n"
        "seconds %.3f  requests/sec %.0f  body bytes %lld\n%s\n",
        static_cast<long long>(o.requests), static_cast<long long>(r->good),
        static_cast<long long>(r->bad), static_cast<long long>(r->errors),
        r->seconds, r->rate(), static_cast<long long>(r->body_bytes),
        LatencyText(r->latency).c_str());
  }
  if (r->bad + r->errors > 0) {
    return Fail("failed requests; first problem: " + r->first_problem);
  }
  return 0;
}

bool Positive(const char* flag, int32_t v) {
  if (v > 0) return true;
  std::fprintf(stderr, "--%s=%d: must be positive\n", flag, v);
  return false;
}
bool PositiveDouble(const char* flag, double v) {
  if (v > 0) return true;
  std::fprintf(stderr, "--%s=%g: must be positive\n", flag, v);
  return false;
}
bool NonNegativeDouble(const char* flag, double v) {
  if (v >= 0) return true;
  std::fprintf(stderr, "--%s=%g: must not be negative\n", flag, v);
  return false;
}
bool PositiveInt64(const char* flag, int64_t v) {
  if (v > 0) return true;
  std::fprintf(stderr, "--%s=%lld: must be positive\n", flag,
               static_cast<long long>(v));
  return false;
}
bool ValidMode(const char* flag, const std::string& v) {
  if (v == "barrier" || v == "pingpong" || v == "http") return true;
  std::fprintf(stderr, "--%s=%s: must be barrier, pingpong or http\n", flag,
               v.c_str());
  return false;
}

}  // namespace

DEFINE_validator(mode, &ValidMode);
DEFINE_validator(threads, &Positive);
DEFINE_validator(rounds, &Positive);
DEFINE_validator(size, &Positive);
DEFINE_validator(connections, &Positive);
DEFINE_validator(timeout_ms, &Positive);
DEFINE_validator(duration, &PositiveDouble);
DEFINE_validator(warmup, &NonNegativeDouble);
DEFINE_validator(requests, &PositiveInt64);

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "load generator for echo and HTTP servers\n"
      "  bench --mode=barrier --threads=N [--rounds=10 --size=13 "
      "--output=FILE]\n"
      "  bench --mode=pingpong --threads=T --connections=C --duration=S\n"
      "  bench --mode=http --threads=T --connections=C --requests=N "
      "[--keepalive]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) return Fail(absl::StrCat("unexpected argument '", argv[1], "'"));
  absl::StatusOr<Endpoint> endpoint =
      baton::client::ResolveEndpoint(FLAGS_host, FLAGS_port);
  if (!endpoint.ok()) return Fail(std::string(endpoint.status().message()));
  if (FLAGS_mode == "pingpong") return RunPingPongMode(*endpoint);
  if (FLAGS_mode == "http") return RunHttpMode(*endpoint);
  return RunBarrierMode(*endpoint);
}
