// Tests for TimerQueue: ordering, cancellation, periodic timers, the timerfd,
// deadlines that never fall due, and cancelling by kind.
#include "lib/internal/timer_queue.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>
#include <vector>

#include "lib/net/clock.h"
#include "tests/util/test_client.h"

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

// Whether the timerfd is armed (for any time).
bool TimerFdArmed(const TimerQueue& q) {
  itimerspec spec = {};
  EXPECT_EQ(::timerfd_gettime(q.fd(), &spec), 0);
  return spec.it_value.tv_sec != 0 || spec.it_value.tv_nsec != 0;
}

TEST(TimerQueueTest, NeverDeadlineStaysPendingWithTheTimerFdDisarmed) {
  TimerQueue q;
  bool ran = false;
  const uint64_t id = q.Add(net::kNeverNanos, 0, [&] { ran = true; });
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(TimerFdArmed(q));
  EXPECT_EQ(q.RunDue(), 0);
  // An ordinary timer still arms it (already due: it fires at once), and
  // runs alone.
  int due = 0;
  q.Add(net::MonotonicNanos() - 1, 0, [&] { ++due; });
  pollfd p = {q.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "timerfd never fired";
  EXPECT_EQ(q.RunDue(), 1);
  EXPECT_EQ(due, 1);
  EXPECT_FALSE(TimerFdArmed(q));
  EXPECT_FALSE(ran);
  EXPECT_TRUE(q.Cancel(id));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, PeriodTooLongForTheClockRunsOnceThenNever) {
  TimerQueue q;
  int runs = 0;
  const uint64_t id =
      q.Add(net::MonotonicNanos() - 1, std::numeric_limits<int64_t>::max(),
            [&] { ++runs; });
  EXPECT_EQ(q.RunDue(), 1);
  EXPECT_EQ(q.RunDue(), 0);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(TimerFdArmed(q));
  EXPECT_TRUE(q.Cancel(id));
}

TEST(TimerQueueTest, CancelFindsOnlyTimersOfItsKind) {
  TimerQueue q;
  int ran = 0;
  const int64_t past = net::MonotonicNanos() - 1;
  const uint64_t reactor = q.Add(
      past, 0, [&] { ran += 1; }, TimerKind::kReactor);
  const uint64_t internal = q.Add(
      past, 0, [&] { ran += 10; }, TimerKind::kInternal);
  EXPECT_FALSE(q.Cancel(reactor, TimerKind::kInternal));
  EXPECT_FALSE(q.Cancel(internal, TimerKind::kReactor));
  EXPECT_EQ(q.RunDue(), 2);
  EXPECT_EQ(ran, 11);
  const uint64_t again = q.Add(
      past, 0, [&] { ran += 100; }, TimerKind::kReactor);
  EXPECT_TRUE(q.Cancel(again, TimerKind::kReactor));
  EXPECT_EQ(q.RunDue(), 0);
  EXPECT_EQ(ran, 11);
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

using ::baton::testing::Notification;

// CLOCK_MONOTONIC in nanoseconds, the clock TimerQueue deadlines use
// (spelled out here so these tests do not depend on where the library's
// own helper lives).
int64_t NowNanos() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

constexpr int64_t kMs = 1000 * 1000;

// RunDue takes every due timer under the lock and
// runs the callbacks after unlocking. A Cancel that lands while an earlier
// callback of the same batch runs must still stop the later one: "true"
// means the callback will not start again. Deterministic: the first
// callback holds the batch open until the cancel has returned.
void CancelWhileEarlierCallbackRuns(int64_t period_ns) {
  TimerQueue q;
  Notification first_running, cancelled;
  std::atomic<int> second_runs{0};
  const int64_t now = NowNanos();
  bool held = false;
  q.Add(now - 2, 1 * kMs, [&] {
    if (held) return;
    held = true;
    first_running.Notify();
    EXPECT_TRUE(cancelled.WaitFor(std::chrono::seconds(10)));
  });
  const uint64_t second = q.Add(now - 1, period_ns, [&] { ++second_runs; });
  std::thread runner([&] { q.RunDue(); });
  ASSERT_TRUE(first_running.WaitFor(std::chrono::seconds(10)));
  const bool result = q.Cancel(second);
  cancelled.Notify();
  runner.join();
  EXPECT_TRUE(result) << "the second timer had not started: cancellable";
  EXPECT_EQ(second_runs.load(), 0)
      << "Cancel returned " << result << " but the callback ran afterwards";
  EXPECT_FALSE(q.Cancel(second));
}

TEST(TimerQueueTest, CancelStopsAPeriodicTimerAlreadyTakenIntoTheBatch) {
  CancelWhileEarlierCallbackRuns(1 * kMs);
}

TEST(TimerQueueTest, CancelStopsAOneShotTimerAlreadyTakenIntoTheBatch) {
  CancelWhileEarlierCallbackRuns(0);
}

// A callback that is running on another thread is not waited for, so Cancel
// cannot promise it "will not run": it answers false, yet the timer is gone
// and never starts again.
TEST(TimerQueueTest, CancelOfARunningPeriodicTimerIsFalseButStopsIt) {
  TimerQueue q;
  Notification running, cancelled;
  std::atomic<int> runs{0};
  const uint64_t id = q.Add(NowNanos() - 1, 1, [&] {
    if (runs.fetch_add(1) == 0) {
      running.Notify();
      EXPECT_TRUE(cancelled.WaitFor(std::chrono::seconds(10)));
    }
  });
  std::thread runner([&] { q.RunDue(); });
  ASSERT_TRUE(running.WaitFor(std::chrono::seconds(10)));
  EXPECT_FALSE(q.Cancel(id));
  cancelled.Notify();
  runner.join();
  EXPECT_EQ(q.size(), 0u);
  // Due again long ago; nothing runs.
  for (int i = 0; i < 3; ++i) q.RunDue();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_FALSE(q.Cancel(id));
}

// A periodic callback that cancels itself: it is the caller, so "will not
// run again" holds and Cancel says true.
TEST(TimerQueueTest, PeriodicTimerCancellingItselfGetsTrue) {
  TimerQueue q;
  uint64_t id = 0;
  int runs = 0;
  bool result = false;
  id = q.Add(NowNanos() - 1, 1, [&] {
    ++runs;
    result = q.Cancel(id);
  });
  EXPECT_EQ(q.RunDue(), 1);
  EXPECT_TRUE(result);
  EXPECT_EQ(q.size(), 0u);
  q.RunDue();
  EXPECT_EQ(runs, 1);
}

// Clear() while a batch is running drops the rest of the batch.
TEST(TimerQueueTest, ClearDuringABatchDropsItsRemainingCallbacks) {
  TimerQueue q;
  int later = 0;
  const int64_t now = NowNanos();
  q.Add(now - 2, 0, [&] { q.Clear(); });
  q.Add(now - 1, 1 * kMs, [&] { ++later; });
  q.RunDue();
  EXPECT_EQ(later, 0);
  EXPECT_EQ(q.size(), 0u);
}

// Cancel from other threads at random points while one thread runs batches
// of periodic timers: whenever Cancel says true, that timer's callback never
// starts afterwards.
TEST(TimerQueueTest, CancelRacingRunDueNeverLetsATrueCancelRun) {
  constexpr int kTimers = 16;
  TimerQueue q;
  std::atomic<bool> cancelled_true[kTimers] = {};
  std::atomic<int> violations{0};
  std::atomic<int> runs{0};
  std::vector<uint64_t> ids;
  const int64_t now = NowNanos();
  for (int i = 0; i < kTimers; ++i) {
    ids.push_back(q.Add(now - kTimers + i, 1, [&, i] {
      if (cancelled_true[i].load()) ++violations;
      ++runs;
      for (volatile int spin = 0; spin < 2000; ++spin) {
      }
    }));
  }
  std::atomic<bool> done{false};
  std::thread runner([&] {
    while (!done.load()) q.RunDue();
  });
  // Wait (bounded by count of polls) for the batches to be running.
  for (int i = 0; i < 10000 && runs.load() < 2 * kTimers; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  for (int i = 0; i < kTimers; ++i) {
    if (q.Cancel(ids[i])) cancelled_true[i] = true;
    std::this_thread::sleep_for(std::chrono::microseconds(50 + 37 * i));
  }
  done = true;
  runner.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace baton::internal
