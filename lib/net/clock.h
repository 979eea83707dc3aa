// Internal header (project-wide: lib, servers, clients, tests): the
// monotonic clocks the reactor and the load generators measure with, and
// the one way to turn "now + delay" into a deadline.
#ifndef BATON_NET_CLOCK_H_
#define BATON_NET_CLOCK_H_

#include <cstdint>
#include <limits>

namespace baton::net {

// CLOCK_MONOTONIC in nanoseconds.
int64_t MonotonicNanos();

// CLOCK_MONOTONIC_COARSE in milliseconds: cheap enough for every event, as
// coarse as the kernel tick.
int64_t CoarseMonotonicMillis();

// A deadline (CLOCK_MONOTONIC nanoseconds) that never falls due.
constexpr int64_t kNeverNanos = std::numeric_limits<int64_t>::max();

// The deadline `delay_ns` after `now_ns`, saturating instead of
// overflowing: a delay that would reach past the end of int64_t (such as
// absl::ToInt64Nanoseconds(absl::InfiniteDuration()), which is INT64_MAX)
// gives kNeverNanos; zero or negative gives `now_ns` (due at once).
// Every "clock value + duration" in the library goes through here.
int64_t DeadlineAfter(int64_t now_ns, int64_t delay_ns);

}  // namespace baton::net

#endif  // BATON_NET_CLOCK_H_
