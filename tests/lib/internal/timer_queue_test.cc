// Tests for TimerQueue: ordering, cancellation, periodic timers, the timerfd.
#include "lib/internal/timer_queue.h"
#include "lib/net/clock.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <vector>

namespace baton::internal {
namespace {

TEST(TimerQueueTest, RunsDueTimersInDeadlineOrder) {
  TimerQueue q;
  std::vector<int> order;
  const int64_t now = net::MonotonicNanos();
  q.Add(now - 1000, 0, [&] { order.push_back(2); });
  q.Add(now - 3000, 0, [&] { order.push_back(1); });
  q.Add(now + int64_t{3600} * 1000000000, 0, [&] { order.push_back(99); });
  EXPECT_EQ(q.RunDue(), 2);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(q.size(), 1u);
}

TEST(TimerQueueTest, CancelledTimerNeverRuns) {
  TimerQueue q;
  bool ran = false;
  const uint64_t id = q.Add(net::MonotonicNanos() - 1, 0, [&] { ran = true; });
  EXPECT_TRUE(q.Cancel(id));
  EXPECT_FALSE(q.Cancel(id));
  EXPECT_EQ(q.RunDue(), 0);
  EXPECT_FALSE(ran);
}

TEST(TimerQueueTest, PeriodicTimerIsRescheduled) {
  TimerQueue q;
  int runs = 0;
  const uint64_t id = q.Add(net::MonotonicNanos() - 1, 1, [&] { ++runs; });
  EXPECT_EQ(q.RunDue(), 1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.Cancel(id));
  EXPECT_EQ(runs, 1);
}

TEST(TimerQueueTest, TimerFdBecomesReadableAtDeadline) {
  TimerQueue q;
  bool ran = false;
  q.Add(net::MonotonicNanos() + 20 * 1000 * 1000, 0, [&] { ran = true; });
  pollfd p = {q.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "timerfd never fired";
  EXPECT_EQ(q.RunDue(), 1);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace baton::internal
