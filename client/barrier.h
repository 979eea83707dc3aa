// Client library header: the kecho-style barrier bench. N threads connect,
// wait on one start barrier released by a single pthread_cond_broadcast once
// every thread is connected and waiting, then each times its own round trips.
#ifndef BATON_CLIENT_BARRIER_H_
#define BATON_CLIENT_BARRIER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/net.h"

namespace baton::client {

struct BarrierOptions {
  Endpoint endpoint;
  int threads = 1;
  int rounds = 10;     // kecho's BENCH_COUNT
  size_t size = 13;    // kecho's "dummy message" length
  int timeout_ms = 5000;
};

struct BarrierThreadResult {
  int id = 0;
  double avg_us = 0;     // mean round-trip time of this thread
  // Global order in which the thread reached the barrier, and in which it
  // started timing after the release. With a working barrier every
  // waited_seq is smaller than every started_seq.
  int64_t waited_seq = -1;
  int64_t started_seq = -1;
  std::string error;     // empty if every round trip was verified
};

struct BarrierResult {
  std::vector<BarrierThreadResult> threads;  // sorted by id
  double wall_s = 0;     // from the release to the last thread finishing
  int errors = 0;
};

absl::StatusOr<BarrierResult> RunBarrier(const BarrierOptions& options);

}  // namespace baton::client

#endif  // BATON_CLIENT_BARRIER_H_
