// Tests for lib/net/clock: both clocks are monotonic and agree on the unit;
// DeadlineAfter saturates instead of overflowing.
#include "lib/net/clock.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cstdint>
#include <limits>

#include "absl/time/time.h"

namespace baton::net {
namespace {

TEST(ClockTest, MonotonicNanosNeverGoesBack) {
  int64_t last = MonotonicNanos();
  EXPECT_GT(last, 0);
  for (int i = 0; i < 10000; ++i) {
    const int64_t now = MonotonicNanos();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(ClockTest, CoarseMillisNeverGoesBack) {
  int64_t last = CoarseMonotonicMillis();
  for (int i = 0; i < 10000; ++i) {
    const int64_t now = CoarseMonotonicMillis();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(ClockTest, UnitsMatchClockGettime) {
  // Bracketing the call between two reads of the same clock checks the unit
  // conversion without any assumption about how long the calls take.
  timespec before;
  clock_gettime(CLOCK_MONOTONIC, &before);
  const int64_t ns = MonotonicNanos();
  timespec after;
  clock_gettime(CLOCK_MONOTONIC, &after);
  EXPECT_GE(ns, int64_t{before.tv_sec} * 1000000000 + before.tv_nsec);
  EXPECT_LE(ns, int64_t{after.tv_sec} * 1000000000 + after.tv_nsec);

  clock_gettime(CLOCK_MONOTONIC_COARSE, &before);
  const int64_t ms = CoarseMonotonicMillis();
  clock_gettime(CLOCK_MONOTONIC_COARSE, &after);
  EXPECT_GE(ms, int64_t{before.tv_sec} * 1000 + before.tv_nsec / 1000000);
  EXPECT_LE(ms, int64_t{after.tv_sec} * 1000 + after.tv_nsec / 1000000);
}

TEST(DeadlineAfterTest, AddsAnOrdinaryDelay) {
  EXPECT_EQ(DeadlineAfter(1000, 234), 1234);
  const int64_t now = MonotonicNanos();
  EXPECT_EQ(DeadlineAfter(now, absl::ToInt64Nanoseconds(absl::Seconds(3))),
            now + 3000000000);
}

TEST(DeadlineAfterTest, ZeroOrNegativeMeansNow) {
  EXPECT_EQ(DeadlineAfter(1000, 0), 1000);
  EXPECT_EQ(DeadlineAfter(1000, -5), 1000);
  EXPECT_EQ(DeadlineAfter(1000, std::numeric_limits<int64_t>::min()), 1000);
  EXPECT_EQ(
      DeadlineAfter(1000, absl::ToInt64Nanoseconds(-absl::InfiniteDuration())),
      1000);
}

TEST(DeadlineAfterTest, InfiniteOrHugeMeansNever) {
  const int64_t now = MonotonicNanos();
  EXPECT_EQ(
      DeadlineAfter(now, absl::ToInt64Nanoseconds(absl::InfiniteDuration())),
      kNeverNanos);
  EXPECT_EQ(DeadlineAfter(now, absl::ToInt64Nanoseconds(absl::Hours(3e6))),
            kNeverNanos);
  EXPECT_EQ(DeadlineAfter(now, kNeverNanos - now), kNeverNanos);
  EXPECT_EQ(DeadlineAfter(now, kNeverNanos - now - 1), kNeverNanos - 1);
  EXPECT_EQ(DeadlineAfter(kNeverNanos, 1), kNeverNanos);
}

}  // namespace
}  // namespace baton::net
