// Client library: the HTTP load's runs — option checks, the threads and
// their common start, the closed loop, and the summary over threads. The
// connections are in http_worker.cc, the paced loop in paced_load.cc.
#include "client/http_load.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/http_worker.h"

namespace baton::client {
namespace {

// Thread `index`'s closed loop: each slot sends its next request once the
// last one ended, while the run's request budget (`remaining`, shared by
// the threads) or its time lasts.
void RunClosedLoop(const HttpLoadOptions& o, const HttpRunClock& clock,
                   std::atomic<int64_t>* remaining, HttpWorker* worker) {
  const bool timed = o.requests == 0;
  auto start = [&](HttpSlot& s) {
    const int64_t now = NowNanos();
    if (timed ? now >= clock.end_ns : remaining->fetch_sub(1) <= 0) return;
    worker->Start(s, now, !timed || now >= clock.measure_ns);
  };
  for (HttpSlot& s : worker->slots()) start(s);
  for (;;) {
    const std::vector<HttpSlot*> finished = worker->TakeFinished();
    for (HttpSlot* s : finished) start(*s);
    if (worker->active() > 0) {
      worker->Poll(NowNanos() + 50000000);
    } else if (finished.empty()) {
      break;  // nothing in flight and nothing more to start
    }
  }
}

// Holds the threads until the run's clock is set, so they share one t0.
class StartGate {
 public:
  void Open(const HttpRunClock& clock) {
    std::lock_guard<std::mutex> lock(mu_);
    clock_ = clock;
    open_ = true;
    cv_.notify_all();
  }
  HttpRunClock Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
    return clock_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  HttpRunClock clock_;
};

}  // namespace

absl::Status ValidateHttpLoadOptions(const HttpLoadOptions& o) {
  if (o.threads < 1 || o.connections < 1) {
    return absl::InvalidArgumentError(
        "threads and connections must be positive");
  }
  if (o.requests < 0) {
    return absl::InvalidArgumentError(
        "requests must be positive, or 0 for a run of a duration");
  }
  if (!(o.rate >= 0) || std::isinf(o.rate)) {
    return absl::InvalidArgumentError("rate must be a positive number, or 0");
  }
  if (!(o.warmup_s >= 0)) {
    return absl::InvalidArgumentError("warmup must not be negative");
  }
  const bool timed = o.requests == 0 || o.rate > 0;
  if (timed && !(o.duration_s > 0)) {
    return absl::InvalidArgumentError(
        o.rate > 0 ? "a paced run (rate) needs a positive duration"
                   : "requests=0 (a run of a duration) needs a positive "
                     "duration");
  }
  if (o.rate > 0 && o.requests != 0) {
    return absl::InvalidArgumentError(
        "a paced run (rate) lasts its duration: requests must be 0");
  }
  if (o.rate > 0 && o.keepalive) {
    return absl::InvalidArgumentError(
        "rate opens a new connection per request: not with keepalive");
  }
  if (!timed && (o.duration_s != 0 || o.warmup_s != 0)) {
    return absl::InvalidArgumentError(
        "duration and warmup are for a run of a duration (requests=0) or a "
        "paced one (rate), not with a count of requests");
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options) {
  const absl::Status valid = ValidateHttpLoadOptions(options);
  if (!valid.ok()) return valid;
  HttpProblems problems;
  std::atomic<int64_t> remaining{options.requests};
  std::vector<std::unique_ptr<HttpWorker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.push_back(
        std::make_unique<HttpWorker>(options, &problems, options.connections));
  }
  StartGate gate;
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      const HttpRunClock clock = gate.Wait();
      if (options.rate > 0) {
        RunPaced(options, clock, t, workers[t].get());
      } else {
        RunClosedLoop(options, clock, &remaining, workers[t].get());
      }
    });
  }
  HttpRunClock clock;
  clock.start_ns = NowNanos();
  clock.measure_ns =
      clock.start_ns + static_cast<int64_t>(options.warmup_s * 1e9);
  clock.end_ns =
      clock.measure_ns + static_cast<int64_t>(options.duration_s * 1e9);
  gate.Open(clock);
  for (auto& t : threads) t.join();
  const int64_t finished = NowNanos();
  HttpLoadResult result;
  int64_t last_end = 0;
  for (auto& w : workers) {
    HttpLoadResult& r = w->result();
    result.good += r.good;
    result.bad += r.bad;
    result.errors += r.errors;
    result.late += r.late;
    result.body_bytes += r.body_bytes;
    result.latency.Merge(r.latency);
    result.send_lag.Merge(r.send_lag);
    last_end = std::max(last_end, w->last_measured_end_ns());
  }
  const bool timed = options.requests == 0 || options.rate > 0;
  result.seconds =
      static_cast<double>(timed ? std::max(clock.end_ns, last_end) -
                                      clock.measure_ns
                                : finished - clock.start_ns) /
      1e9;
  result.first_problem = problems.first;
  return result;
}

}  // namespace baton::client
