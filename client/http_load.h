// Client library header: htstress-style HTTP load — several threads, each
// with its own epoll and a number of concurrent connections — in three
// shapes:
//   - a total number of requests (closed loop: each connection sends its
//     next request when the last one is answered);
//   - the same closed loop for a fixed time (`requests` = 0, `duration_s`
//     after `warmup_s`);
//   - open-loop pacing (`rate` > 0): request i is scheduled at t0 + i/rate
//     on a new connection, whether or not earlier ones were answered, and
//     its latency runs from its scheduled time (no coordinated omission).
#ifndef BATON_CLIENT_HTTP_LOAD_H_
#define BATON_CLIENT_HTTP_LOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/histogram.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"

namespace baton::client {

struct HttpLoadOptions {
  Endpoint endpoint;
  std::string host_header = "localhost";
  std::string path = "/";
  int threads = 1;
  // Per thread: the connections kept busy (closed loop), or with `rate` the
  // cap on requests in flight; a scheduled request that finds the cap full
  // is `late` and goes out as soon as one ends.
  int connections = 10;
  // Total requests (closed loop); 0: run for `duration_s` instead.
  int64_t requests = 10000;
  // Time-bound runs (`requests` = 0, or `rate`): requests started (closed
  // loop) or scheduled (`rate`) in the first `warmup_s` seconds are sent
  // but not counted; those in the next `duration_s` seconds are counted.
  // Requests in flight at the end are waited for (up to timeout_ms).
  double duration_s = 0;
  double warmup_s = 0;
  // New requests per second over all threads, each on a new connection
  // (HTTP/1.1, "Connection: close"); 0: closed loop. Not with keepalive.
  double rate = 0;
  // false: HTTP/1.0, a new connection per request (htstress);
  // true: HTTP/1.1 keep-alive, connections reused while the server agrees.
  bool keepalive = false;
  int timeout_ms = 5000;
  std::atomic<int64_t>* progress = nullptr;  // completed requests, all
  // When set (a client context), every connection speaks TLS (HTTPS): each
  // new connection's handshake happens before its first response, so it
  // counts in that request's latency (every request's without keepalive).
  std::shared_ptr<const tls::TlsContext> tls;
};

// The counted requests (all of them, or those of the measured window).
struct HttpLoadResult {
  int64_t good = 0;    // 2xx, complete body of the announced length
  int64_t bad = 0;     // anything else the server answered
  int64_t errors = 0;  // connect failures, resets, timeouts
  // `rate` only: scheduled while the cap on requests in flight was full,
  // so sent later than scheduled (still timed from the schedule).
  int64_t late = 0;
  int64_t body_bytes = 0;
  // The whole run (`requests` > 0); else from the end of the warm-up to
  // the end of the duration or the last counted answer, if later.
  double seconds = 0;
  // Request sent (`rate`: scheduled) to response complete, nanoseconds;
  // good responses only.
  Histogram latency;
  // `rate` only: scheduled time to the time the request was started, for
  // every counted request: the wait for a slot (late ones), plus any delay
  // of the generator itself (a busy client core), which `latency` includes.
  Histogram send_lag;
  std::string first_problem;  // what the first bad answer or error was
  int64_t requests() const { return good + bad + errors; }
  double rate() const { return seconds > 0 ? (good + bad) / seconds : 0; }
};

// InvalidArgument names what is wrong with `options` (non-positive counts,
// a time-bound run without a duration, rate with keepalive...).
absl::Status ValidateHttpLoadOptions(const HttpLoadOptions& options);

absl::StatusOr<HttpLoadResult> RunHttpLoad(const HttpLoadOptions& options);

}  // namespace baton::client

#endif  // BATON_CLIENT_HTTP_LOAD_H_
