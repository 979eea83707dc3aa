// Internal header (project-wide: lib, servers, clients, tests): the
// monotonic clocks the reactor and the load generators measure with.
#ifndef BATON_NET_CLOCK_H_
#define BATON_NET_CLOCK_H_

#include <cstdint>

namespace baton::net {

// CLOCK_MONOTONIC in nanoseconds.
int64_t MonotonicNanos();

// CLOCK_MONOTONIC_COARSE in milliseconds: cheap enough for every event, as
// coarse as the kernel tick.
int64_t CoarseMonotonicMillis();

}  // namespace baton::net

#endif  // BATON_NET_CLOCK_H_
