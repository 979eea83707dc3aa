// Internal: monotonic clocks.
#include "lib/net/clock.h"

#include <time.h>

namespace baton::net {

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t CoarseMonotonicMillis() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

int64_t DeadlineAfter(int64_t now_ns, int64_t delay_ns) {
  if (delay_ns <= 0) return now_ns;
  if (now_ns >= 0 && delay_ns >= kNeverNanos - now_ns) return kNeverNanos;
  return now_ns + delay_ns;
}

}  // namespace baton::net
