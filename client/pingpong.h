// Client library header: the ping-pong load — closed-loop echo round trips
// on many connections per thread, one epoll per thread.
#ifndef BATON_CLIENT_PINGPONG_H_
#define BATON_CLIENT_PINGPONG_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/histogram.h"
#include "client/net.h"
#include "lib/tls/tls_context.h"

namespace baton::client {

struct PingPongOptions {
  Endpoint endpoint;
  int threads = 1;
  int connections = 100;  // per thread
  size_t size = 64;
  double duration_s = 5;
  double warmup_s = 0;    // round trips in the first warmup_s are not counted
  int timeout_ms = 5000;  // no reply progress for this long is an error
  // Completed round trips so far (for progress lines); may be null.
  std::atomic<int64_t>* progress = nullptr;
  // Head-of-line benchmark: the first `slow_connections` connections of
  // each thread send "slow" messages, whose first byte is `slow_byte`; a
  // server run with --slow_us delays those (server/slow_rule.h). No other
  // byte of any message equals `slow_byte`, so the server's count of marker
  // bytes is exactly the number of slow messages.
  int slow_connections = 0;  // per thread, 0..connections
  unsigned char slow_byte = 255;
  // When positive, each connection stops after this many round trips
  // (warm-up ones included) and the run ends once every connection has,
  // or at the end of duration_s, whichever comes first: a fixed amount of
  // work whose counts do not depend on the machine's speed.
  int64_t round_trips_per_connection = 0;
  // When set (a client context), every connection speaks TLS: messages are
  // encrypted, replies decrypted and then compared. The handshake happens
  // before the first message's reply, so it counts in that latency.
  std::shared_ptr<const tls::TlsContext> tls;
  // With tls: each round trip runs on a new connection with a new full
  // handshake (the cost of a handshake per request); the latency covers
  // connect, handshake and echo.
  bool tls_new_handshake_per_request = false;
};

// Round trips of one class of connections (fast or slow).
struct PingPongClass {
  int connections = 0;      // over all threads
  int64_t round_trips = 0;  // completed and verified, after warm-up
  Histogram latency;        // per round trip, nanoseconds
};

struct PingPongResult {
  int64_t round_trips = 0;  // completed and verified, after warm-up
  double seconds = 0;       // measured interval
  Histogram latency;        // per round trip, nanoseconds
  // The same, split by connection class; fast + slow == the totals above.
  PingPongClass fast;
  PingPongClass slow;
  double rate() const { return seconds > 0 ? round_trips / seconds : 0; }
  double rate(const PingPongClass& c) const {
    return seconds > 0 ? c.round_trips / seconds : 0;
  }
};

// Runs the load. Every reply is compared byte for byte with what was sent;
// a mismatch, a closed or reset connection, or a stall longer than
// timeout_ms ends the run with an error status naming what happened.
absl::StatusOr<PingPongResult> RunPingPong(const PingPongOptions& options);

}  // namespace baton::client

#endif  // BATON_CLIENT_PINGPONG_H_
