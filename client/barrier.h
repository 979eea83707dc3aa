// Client library header: the kecho-style barrier bench. N threads connect,
// wait on one start barrier released by a single pthread_cond_broadcast once
// every thread is connected and waiting, then each times its own round trips.
#ifndef BATON_CLIENT_BARRIER_H_
#define BATON_CLIENT_BARRIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"

namespace baton::client {

// Counters the workers bump as they go, for progress lines.
struct BarrierProgress {
  std::atomic<int> connected{0};  // connect finished (or failed)
  std::atomic<bool> released{false};
  std::atomic<int> finished{0};  // all rounds done (or given up)
};

struct BarrierOptions {
  Endpoint endpoint;
  int threads = 1;
  int rounds = 10;   // kecho's BENCH_COUNT
  size_t size = 13;  // kecho's "dummy message" length
  // Bounds the connect and each round trip (at most twice this if the reply
  // trickles in); a round trip that takes longer is a "timed out" error.
  int timeout_ms = 5000;
  BarrierProgress* progress = nullptr;  // may be null
  // When set (a client context), each thread's connection speaks TLS; the
  // handshake and one untimed round trip (which takes in the server's
  // post-handshake messages, such as TLS 1.3 session tickets) are done
  // before the thread reaches the barrier, so the timed round trips are
  // the echo's TLS records only (encryption included).
  std::shared_ptr<const tls::TlsContext> tls;
};

struct BarrierThreadResult {
  int id = 0;
  double avg_us = 0;  // mean round-trip time of this thread
  // Global order in which the thread reached the barrier, and in which it
  // started timing after the release. With a working barrier every
  // waited_seq is smaller than every started_seq.
  int64_t waited_seq = -1;
  int64_t started_seq = -1;
  std::string error;  // empty if every round trip was verified
};

struct BarrierResult {
  std::vector<BarrierThreadResult> threads;  // sorted by id
  double wall_s = 0;  // from the release to the last thread finishing
  int errors = 0;
};

// Runs the bench. A failed connect or round trip is that thread's `error`
// (the others go on); the status is an error only when the run could not
// start (bad options, threads that could not be created).
absl::StatusOr<BarrierResult> RunBarrier(const BarrierOptions& options);

// One distinct error message and the threads that reported it, so that a
// thousand "Connection refused" lines print as one.
struct ErrorGroup {
  std::string message;
  int threads = 0;
  int first_thread = 0;  // lowest id with this error
};

// The distinct errors of `result`, most frequent first.
std::vector<ErrorGroup> GroupErrors(const BarrierResult& result);

}  // namespace baton::client

#endif  // BATON_CLIENT_BARRIER_H_
