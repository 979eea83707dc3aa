// Public header: per-thread activity counters of a Reactor.
#ifndef BATON_COUNTERS_H_
#define BATON_COUNTERS_H_

#if __cplusplus < 201703L
#error "baton needs C++17: compile code that includes baton headers with -std=c++17 (Bazel's default is older)"
#endif

#include <cstdint>
#include <string>

namespace baton {

// A snapshot of what one reactor thread (or all of them, summed) did.
// Counters are updated with relaxed atomics by their own thread only, so
// reading them costs the hot path nothing; a snapshot is not a consistent cut.
struct ReactorCounters {
  uint64_t epoll_waits = 0;    // epoll_wait calls that returned
  uint64_t events = 0;         // events taken from epoll_wait
  uint64_t promotions = 0;     // followers woken to become leader
  uint64_t rearms = 0;         // EPOLL_CTL_MOD re-arms after handling
  uint64_t stale_events = 0;   // events dropped: connection gone or reused
  uint64_t busy_events = 0;    // events deferred: connection claimed elsewhere
  uint64_t accepts = 0;        // connections accepted
  uint64_t rejected = 0;       // connections refused (limit, fd exhaustion)
  uint64_t closes = 0;         // connections closed
  uint64_t idle_timeouts = 0;  // connections closed by the idle timer
  uint64_t tasks = 0;          // posted tasks and timer callbacks run
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;

  ReactorCounters& operator+=(const ReactorCounters& other);

  // One line, `name=value` pairs, for logs.
  std::string ToString() const;
};

}  // namespace baton

#endif  // BATON_COUNTERS_H_
