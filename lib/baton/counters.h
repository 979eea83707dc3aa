// Public header: per-thread activity counters of a Reactor.
#ifndef BATON_COUNTERS_H_
#define BATON_COUNTERS_H_

#if __cplusplus < 201703L
#error \
    "baton needs C++17: compile code that includes baton headers with -std=c++17 (Bazel's default is older)"
#endif

#include <cstdint>
#include <string>

namespace baton {

// Every counter once: X(name, what it counts). Expanded below for the
// struct fields, and in the implementation for sums, snapshots and logs.
#define BATON_REACTOR_COUNTERS(X)                                          \
  X(epoll_waits, "epoll_wait calls that returned")                         \
  X(events, "events taken from epoll_wait")                                \
  X(promotions, "sleeping threads woken for queued work or the role")      \
  X(handed_off, "events queued for any thread instead of run by leader")   \
  X(rescues, "leader waits cut short to take stranded queued work")        \
  X(rearms, "EPOLL_CTL_MOD re-arms after handling")                        \
  X(rearms_skipped, "re-arms not needed: still armed, same interest")      \
  X(stale_events, "events dropped: connection gone or slot reused")        \
  X(busy_events, "events folded into another thread's claim")              \
  X(accepts, "connections accepted")                                       \
  X(rejected, "connections refused (limit, descriptor exhaustion)")        \
  X(closes, "connections closed")                                          \
  X(idle_timeouts, "connections closed by the idle sweep")                 \
  X(write_timeouts, "connections aborted: output stuck (write_timeout)")   \
  X(tasks, "posted tasks and timer callbacks run")                         \
  X(rereads, "re-reads of a just-served connection")                       \
  X(reread_hits, "re-reads that found data: no re-arm needed")             \
  X(read_yields, "reads cut short for queued work, resumed after it")      \
  X(parks, "relaying connections parked instead of re-armed")              \
  X(park_wakes, "parked connections taken over by a request (a Write)")    \
  X(park_expiries, "parked connections read after their bound ran out")    \
  X(park_rearms, "parked connections re-armed as every thread went idle")  \
  X(sends_at_write, "Reactor::Write output flushed at once by the writer") \
  X(bytes_read, "bytes read from sockets")                                 \
  X(bytes_written, "bytes handed to the kernel")                           \
  X(retained_bytes, "input bytes copied to be handed back (Retain)")       \
  X(connect_attempts, "outbound connect attempts (Reactor::Connect)")      \
  X(connect_failures, "outbound connections that never connected")         \
  X(dns_cache_hits, "connects to a host name answered from the cache")     \
  X(dns_cache_misses, "connects to a host name that waited for a lookup")  \
  X(dns_lookups, "host name lookups sent (waiters of one name share one)") \
  X(tls_handshakes, "TLS handshakes completed (then OnOpen, OnTlsReady)")  \
  X(tls_handshake_failures, "TLS handshakes that failed or timed out")     \
  X(tls_handshake_steps_deferred,                                          \
    "handshake steps a worker queued for the handshake threads")           \
  X(tls_handshake_steps_overdue,                                           \
    "queued handshake steps a worker ran (waited tls_handshake_max_wait)")

// A snapshot of what one reactor thread (or all of them, summed) did.
// Counters are updated with relaxed atomics by their own thread only, so
// reading them costs the hot path nothing; a snapshot is not a consistent cut.
struct ReactorCounters {
#define BATON_COUNTER_FIELD(name, what) uint64_t name = 0;
  BATON_REACTOR_COUNTERS(BATON_COUNTER_FIELD)
#undef BATON_COUNTER_FIELD

  ReactorCounters& operator+=(const ReactorCounters& other);

  // One line, `name=value` pairs, for logs.
  std::string ToString() const;
};

}  // namespace baton

#endif  // BATON_COUNTERS_H_
