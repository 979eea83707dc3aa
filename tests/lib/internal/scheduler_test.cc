// Tests for Scheduler: one leader at a time, every queued item run exactly
// once, queued work taken by a free thread while the queuer is blocked, and
// the leader's rescue wait.
#include "lib/internal/scheduler.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "lib/internal/connection_table.h"
#include "tests/util/test_client.h"

namespace baton::internal {
namespace {

using ::baton::testing::Notification;

// Waits (bounded) until `n` threads sleep in the scheduler.
bool WaitForSleepers(const Scheduler& s, int n) {
  for (int i = 0; i < 10000 && s.sleeping() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return s.sleeping() >= n;
}

// An event item carrying `data`.
ReadyItem Event(uint64_t data) {
  ReadyItem item;
  item.data = data;
  return item;
}

TEST(SchedulerTest, SingleThreadLeadsForeverAndWakesNobody) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  for (int i = 0; i < 100; ++i) {
    int timeout_ms = 0;
    ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
    EXPECT_EQ(timeout_ms, -1) << "nobody else runs: no rescue wait needed";
    EXPECT_TRUE(s.has_leader());
    EXPECT_EQ(s.Handoff(seat, nullptr, 0), 0) << "nobody sleeps";
    EXPECT_FALSE(s.has_leader());
  }
}

TEST(SchedulerTest, QueuedItemsComeBeforeTheLeaderRole) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  ReadyItem batch[3];
  for (int i = 0; i < 3; ++i) batch[i].data = 10 + i;
  s.Handoff(seat, batch, 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
    EXPECT_EQ(item.data, 10u + i) << "first in, first out";
  }
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
}

// The case leader/followers with a private batch gets wrong: the leader
// takes two events, the first one's handler blocks until the second one has
// been run. A sleeping follower must be woken for it and run it.
TEST(SchedulerTest, ABlockedLeaderDoesNotStrandWhatItTook) {
  Scheduler s;
  Notification second_ran;
  std::atomic<int> ran_by_follower{0};
  std::thread follower([&] {
    bool seat = false;
    ReadyItem item;
    int timeout_ms;
    for (;;) {
      const Scheduler::Role role = s.Next(seat, &item, &timeout_ms);
      if (role == Scheduler::Role::kExit) return;
      if (role == Scheduler::Role::kRun && item.data == 2) {
        ran_by_follower.fetch_add(1);
        second_ran.Notify();
      }
      if (role == Scheduler::Role::kLead) s.Handoff(seat, nullptr, 0);
    }
  });
  bool seat = false;
  ReadyItem item;
  int timeout_ms;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  ASSERT_TRUE(WaitForSleepers(s, 1));
  ReadyItem second;
  second.data = 2;
  EXPECT_EQ(s.Handoff(seat, &second, 1), 1) << "one sleeper, woken";
  // "Run" the kept first event: it blocks until the second one has run.
  EXPECT_TRUE(second_ran.WaitFor(std::chrono::seconds(10)))
      << "the handed-over event waited behind the blocked leader";
  s.Shutdown();
  follower.join();
  EXPECT_EQ(ran_by_follower.load(), 1);
}

TEST(SchedulerTest, LeaderWaitsBrieflyWhileOthersRunAndRescuesQueuedWork) {
  Scheduler s;
  bool runner = false;
  bool leader = false;
  ReadyItem item;
  int timeout_ms = 0;
  // `runner` leads, hands one event over and runs it: it is running.
  ASSERT_EQ(s.Next(runner, &item, &timeout_ms), Scheduler::Role::kLead);
  s.Handoff(runner, nullptr, 0);
  // Another thread takes the role while `runner` runs: bounded wait.
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, Scheduler::kLeaderTimeoutMs);
  // Nothing queued: the leader keeps the role.
  EXPECT_FALSE(s.RescueDue(&timeout_ms, /*waited=*/true));
  EXPECT_TRUE(s.has_leader());
  // The runner queues a re-read, then (say) blocks in a handler. The
  // leader's next timeout hands the role back and takes the work.
  ReadyItem reread;
  reread.data = 7;
  s.Push(reread);
  EXPECT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/true));
  EXPECT_FALSE(s.has_leader());
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 7u);
}

// Connections re-armed while the queue is busy must not wait until it runs
// dry: after each pass through a handed-over batch, whoever gets there
// polls epoll without blocking.
TEST(SchedulerTest, EpollIsPolledOncePerPassThroughTheQueue) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  ReadyItem batch[2];
  batch[0].data = 1;
  batch[1].data = 2;
  s.Handoff(seat, batch, 2);
  ReadyItem reread;
  reread.data = 3;
  s.Push(reread);  // queued behind the pass's mark
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 1u);
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 2u);
  // The end of the pass: poll, without blocking, since work is queued.
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, 0);
  // Nothing new: the role goes back, and the next pass ends with a poll too.
  EXPECT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/false));
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 3u);
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, -1) << "queue empty, nobody else runs: block";
  EXPECT_EQ(s.queued(), 0u);
}

// A leader back from epoll_wait with a single event keeps it and hands
// nothing over, but work queued meanwhile (re-reads) can keep the threads
// busy for as long as the re-reads hit. The role must not go vacant with
// no poll ahead, or connections waiting in epoll starve until the queue
// runs dry (100-450 ms stalls in a 40-connection ping-pong before the fix).
TEST(SchedulerTest, ASingleEventHandoffStillEndsThePassWithAPoll) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  const ReadyItem reread = Event(7);
  s.Push(reread);               // queued by another thread while it waited
  s.Handoff(seat, nullptr, 0);  // one event, kept: nothing handed over
  bool polled = false;
  for (int i = 0; i < 10 && !polled; ++i) {
    const Scheduler::Role role = s.Next(seat, &item, &timeout_ms);
    if (role == Scheduler::Role::kLead) {
      polled = true;
      EXPECT_EQ(timeout_ms, 0) << "work is queued: poll, do not block";
      break;
    }
    ASSERT_EQ(role, Scheduler::Role::kRun);
    EXPECT_EQ(item.data, 7u);
    s.Push(reread);  // the re-read hit: read it again after the others
  }
  EXPECT_TRUE(polled) << "a re-read that keeps hitting shut epoll out";
}

// Events a poll brings go ahead of the re-reads queued during the pass: a
// connection whose re-read missed went through epoll and has waited most
// of a pass already, and a re-read that waits longer hits more often.
TEST(SchedulerTest, PolledEventsGoAheadOfQueuedRereads) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  const ReadyItem first = Event(1);
  s.Handoff(seat, &first, 1);
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 1u);
  s.Push(Event(2));  // a re-read, behind the pass's mark
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, 0);
  const ReadyItem polled[2] = {Event(3), Event(4)};
  s.Handoff(seat, polled, 2);
  for (uint64_t expected : {3u, 4u, 2u}) {
    ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
    EXPECT_EQ(item.data, expected);
  }
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead)
      << "the pass ends with a poll";
  EXPECT_EQ(timeout_ms, -1) << "nothing queued, nobody else runs";
}

TEST(SchedulerTest, AtMostOneLeaderAndEveryItemRunsExactlyOnce) {
  Scheduler s;
  constexpr int kThreads = 4;
  constexpr int kBatches = 3000;
  constexpr int kBatchSize = 5;
  std::atomic<int> leaders{0};
  std::atomic<int> max_leaders{0};
  std::atomic<int> batches{0};
  std::vector<std::atomic<int>> runs(kBatches * kBatchSize);
  for (auto& r : runs) r.store(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      bool seat = false;
      ReadyItem item;
      int timeout_ms;
      for (;;) {
        const Scheduler::Role role = s.Next(seat, &item, &timeout_ms);
        if (role == Scheduler::Role::kExit) return;
        if (role == Scheduler::Role::kRun) {
          runs[item.data].fetch_add(1);
          continue;
        }
        // Counted as leading from Next to Handoff: the whole time it holds
        // the role, so a second leader at any point of it is seen.
        const int now = leaders.fetch_add(1) + 1;
        int seen = max_leaders.load();
        while (now > seen && !max_leaders.compare_exchange_weak(seen, now)) {
        }
        // "epoll_wait": hold the role while the others run and look for it.
        std::this_thread::yield();
        const int b = batches.fetch_add(1);
        if (b >= kBatches) {
          leaders.fetch_sub(1);
          s.Handoff(seat, nullptr, 0);
          s.Shutdown();
          return;
        }
        // "epoll_wait" returned kBatchSize events: keep the first.
        ReadyItem taken[kBatchSize];
        for (int i = 0; i < kBatchSize; ++i) taken[i].data = b * kBatchSize + i;
        // Still the leader here; Handoff gives the role up, after which
        // another thread may take it before this one counts itself out.
        leaders.fetch_sub(1);
        s.Handoff(seat, taken + 1, kBatchSize - 1);
        runs[taken[0].data].fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_leaders.load(), 1);
  // Items still queued at shutdown are the reactor's to account for; every
  // item that ran, ran once.
  int ran = 0;
  for (auto& r : runs) {
    ASSERT_LE(r.load(), 1);
    ran += r.load();
  }
  EXPECT_EQ(ran + static_cast<int>(s.queued()), kBatches * kBatchSize);
}

// Parking tests: one claimed slot to park, and the scheduler's seats.
class SchedulerParkingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    slot = table.Allocate();  // claimed by this thread
    ASSERT_NE(slot, nullptr);
  }
  // Another thread (`runner`) leads, hands its batch over and runs it:
  // from then on it counts as running (say, a long handler).
  void AnotherThreadRuns() {
    ASSERT_EQ(s.Next(runner, &item, &timeout_ms), Scheduler::Role::kLead);
    s.Handoff(runner, nullptr, 0);
  }

  ConnectionTable table{4};
  Slot* slot = nullptr;
  Scheduler s;
  bool runner = false;
  bool leader = false;
  ReadyItem item;
  int timeout_ms = 0;
};

// Parking (scheduler.h, "Parking"): while another thread runs items, a
// parked connection is queued for a read, its claim travelling with the
// item, once kParkPasses leader turns have passed.
TEST_F(SchedulerParkingTest, ParkedConnectionIsQueuedAfterItsLeaderTurns) {
  AnotherThreadRuns();
  ASSERT_TRUE(s.Park(slot));
  EXPECT_TRUE(FlagsOf(slot->state.load()) & kParked);
  for (uint64_t turn = 1; turn < Scheduler::kParkPasses; ++turn) {
    ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
    EXPECT_EQ(timeout_ms, Scheduler::kLeaderTimeoutMs);
    EXPECT_FALSE(s.RescueDue(&timeout_ms, /*waited=*/false));
    s.Handoff(leader, nullptr, 0);
  }
  EXPECT_EQ(s.queued(), 0u);
  // The kParkPasses-th turn: the bound has run out; the read runs first.
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.slot, slot);
  EXPECT_EQ(item.kind, WorkKind::kParkExpired);
  EXPECT_EQ(FlagsOf(slot->state.load()) & (kClaimed | kParked), kClaimed);
  table.Free(slot);
}

// A leader wait that ran out (others running) queues parked connections
// for a read at once; a poll between passes does not.
TEST_F(SchedulerParkingTest, TimedOutLeaderWaitQueuesParkedConnections) {
  AnotherThreadRuns();
  ASSERT_TRUE(s.Park(slot));
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  ASSERT_EQ(timeout_ms, Scheduler::kLeaderTimeoutMs);
  EXPECT_FALSE(s.RescueDue(&timeout_ms, /*waited=*/false)) << "a poll: no";
  EXPECT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/true));
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.slot, slot);
  EXPECT_EQ(item.kind, WorkKind::kParkExpired);
  table.Free(slot);
}

// A thread that would block in epoll_wait with nothing queued and nothing
// running first takes the parked connections back to be re-armed; then it
// blocks without a timeout.
TEST_F(SchedulerParkingTest, IdleLeaderReArmsParkedConnectionsBeforeBlocking) {
  ASSERT_TRUE(s.Park(slot));
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.slot, slot);
  EXPECT_EQ(item.kind, WorkKind::kParkIdle);
  EXPECT_EQ(FlagsOf(slot->state.load()) & (kClaimed | kParked), kClaimed);
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, -1);
  table.Free(slot);
}

// A poll between passes that finds nothing, once every other thread has
// gone idle, must not leave the leader blocking without a bound while a
// connection is parked: nobody is left to write to it, so its next bytes,
// FIN or RST would wait for some unrelated event. The sequence: the leader
// hands a batch over (a poll mark goes behind it), serves a connection,
// parks it and relays to another (that one's item queues behind the mark);
// another thread runs the batch; the leader reaches the mark and polls
// (timeout 0); the other thread runs the relayed item and goes to sleep;
// the poll returns nothing.
TEST_F(SchedulerParkingTest, PollFindingNothingAfterOthersWentIdleTakesParked) {
  bool other = false;
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  const ReadyItem batch = Event(1);
  s.Handoff(leader, &batch, 1);  // keeps the client's event, hands one over
  ASSERT_TRUE(s.Park(slot));     // served the client, parked it
  s.Push(Event(2));              // and relayed: the peer's item
  ASSERT_EQ(s.Next(other, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 1u);
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  ASSERT_EQ(timeout_ms, 0) << "the mark, with the relayed item queued";
  ASSERT_EQ(s.Next(other, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.data, 2u);
  // The other thread is done and sleeps: nothing queued, nothing running.
  ReadyItem taken;
  Scheduler::Role taken_role = Scheduler::Role::kExit;
  std::thread sleeper([&] {
    int t = 0;
    taken_role = s.Next(other, &taken, &t);
  });
  ASSERT_TRUE(WaitForSleepers(s, 1));
  // The poll found nothing.
  const bool gave_up = s.RescueDue(&timeout_ms, /*waited=*/false);
  const uint32_t flags = FlagsOf(slot->state.load());
  const bool stranded = !gave_up && timeout_ms < 0 && (flags & kParked) != 0;
  EXPECT_FALSE(stranded)
      << "the leader would block in epoll_wait(-1) with a parked connection";
  // It is taken back to be re-armed (as when a new leader finds every
  // thread idle), so the leader gives the role up to let it run.
  EXPECT_TRUE(gave_up);
  EXPECT_FALSE(s.has_leader());
  EXPECT_EQ(flags & (kClaimed | kParked), kClaimed);
  s.Shutdown();  // the sleeper took the item, or exits and leaves it queued
  sleeper.join();
  if (taken_role == Scheduler::Role::kRun) {
    EXPECT_EQ(taken.slot, slot);
    EXPECT_EQ(taken.kind, WorkKind::kParkIdle);
    EXPECT_EQ(s.queued(), 0u);
  } else {
    EXPECT_EQ(taken_role, Scheduler::Role::kExit);
    EXPECT_EQ(s.queued(), 1u);
  }
  table.Free(slot);
}

// A request takes a parked claim over (TryClaim: kClaimed, kParked gone);
// the bound then finds nothing to do, even after the new owner parked the
// connection again (a new ticket): that parking has bounds of its own.
// Park is refused while work is pending, and clears kPending.
TEST_F(SchedulerParkingTest, TakeoverEndsAParkingAndItsBound) {
  const uint32_t generation = GenerationOf(slot->state.load());
  AnotherThreadRuns();
  ASSERT_TRUE(s.Park(slot));
  ASSERT_EQ(ConnectionTable::TryClaim(slot, generation, kCloseRequested),
            ClaimResult::kClaimed);
  EXPECT_EQ(FlagsOf(slot->state.load()) & (kClaimed | kParked), kClaimed);
  EXPECT_EQ(ConnectionTable::TryClaim(slot, generation), ClaimResult::kBusy);
  EXPECT_FALSE(s.Park(slot)) << "pending work must be served first";
  EXPECT_EQ(FlagsOf(slot->state.load()) & kPending, 0u);
  EXPECT_EQ(ConnectionTable::TakeRequests(slot), uint32_t{kCloseRequested});
  ASSERT_TRUE(s.Park(slot));  // parked again, with a new ticket
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kLead);
  // Both entries come due: the first is stale, the second queues it once.
  EXPECT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/true));
  EXPECT_EQ(s.queued(), 1u);
  ASSERT_EQ(s.Next(leader, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.slot, slot);
  EXPECT_FALSE(ConnectionTable::Unpark(slot, generation)) << "not parked";
  table.Free(slot);
  // A stale generation can neither take over nor unpark a reused slot.
  Slot* reused = table.Allocate();
  ASSERT_EQ(reused, slot);
  ASSERT_TRUE(s.Park(reused));
  EXPECT_EQ(ConnectionTable::TryClaim(reused, generation), ClaimResult::kStale);
  EXPECT_FALSE(ConnectionTable::Unpark(reused, generation));
  EXPECT_TRUE(ConnectionTable::Unpark(reused, GenerationOf(reused->state)));
  table.Free(reused);
}

// Every kind of work comes out of the queue as it went in: the kind, and
// the fields that kind uses (the rest zero). PushClaimed builds an item of
// the kind it is asked for; events come back from Handoff and Push; a poll
// mark is never returned.
TEST(SchedulerTest, EachKindOfWorkRoundTripsThroughTheQueue) {
  static_assert(sizeof(ReadyItem) <= 32, "copied on the hot path");
  ConnectionTable table(4);
  Slot* slot = table.Allocate();  // claimed by this thread
  ASSERT_NE(slot, nullptr);
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  ReadyItem handed;
  handed.data = 41;
  handed.events = 0x5;
  s.Handoff(seat, &handed, 1);  // the event, then a poll mark
  ReadyItem pushed;
  pushed.data = 42;
  pushed.events = 0x4;
  s.Push(pushed);
  struct Claimed {
    WorkKind kind;
    int round;
  };
  const Claimed claimed[] = {
      {WorkKind::kReread, 1},      {WorkKind::kReread, 7},
      {WorkKind::kYield, 0},       {WorkKind::kRequest, 0},
      {WorkKind::kParkExpired, 0}, {WorkKind::kParkIdle, 0},
  };
  // The slot stands in for a different connection each time: the queue
  // never looks at it.
  for (const Claimed& c : claimed) s.PushClaimed(slot, c.kind, c.round);
  EXPECT_EQ(s.queued(), 2u + 6u) << "the poll mark is not counted";

  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.kind, WorkKind::kEvent);
  EXPECT_EQ(item.data, 41u);
  EXPECT_EQ(item.events, 0x5u);
  EXPECT_EQ(item.slot, nullptr);
  EXPECT_EQ(item.round, 0);
  // The poll mark behind the handed-over event: the role, not an item.
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, 0);
  EXPECT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/false));
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.kind, WorkKind::kEvent);
  EXPECT_EQ(item.data, 42u);
  EXPECT_EQ(item.events, 0x4u);
  EXPECT_EQ(item.slot, nullptr);
  for (const Claimed& c : claimed) {
    ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kRun);
    EXPECT_EQ(item.kind, c.kind);
    EXPECT_EQ(item.slot, slot);
    EXPECT_EQ(item.round, c.round);
    EXPECT_EQ(item.data, 0u);
    EXPECT_EQ(item.events, 0u);
  }
  // The pass ends with a poll; nothing is queued after it.
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, -1);
  EXPECT_EQ(s.queued(), 0u);
  table.Free(slot);
}

TEST(SchedulerTest, ShutdownReleasesSleepers) {
  Scheduler s;
  bool seat = false;
  ReadyItem item;
  int timeout_ms;
  ASSERT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kLead);
  std::vector<std::thread> threads;
  std::atomic<int> exited{0};
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      bool own = false;
      ReadyItem it;
      int t;
      if (s.Next(own, &it, &t) == Scheduler::Role::kExit) exited.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitForSleepers(s, 3));
  s.Shutdown();
  for (auto& t : threads) t.join();
  EXPECT_EQ(exited.load(), 3);
  EXPECT_EQ(s.Next(seat, &item, &timeout_ms), Scheduler::Role::kExit);
}

}  // namespace
// Handshake threads (scheduler.h, "Handshake threads"): a deferred step
// goes to NextHandshake, never to a worker's Next, until it has waited
// past the bound; then the next worker that looks for work takes it.
TEST(SchedulerHandshakeTest, DeferredStepGoesToAWorkerOnlyOnceOverdue) {
  ConnectionTable table{4};
  Slot* first = table.Allocate();
  Slot* second = table.Allocate();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  Scheduler s;
  s.set_handshake_max_wait(int64_t{3600} * 1000 * 1000 * 1000);  // an hour
  s.PushHandshake(first, EPOLLIN);
  bool worker = false;
  ReadyItem item;
  int timeout_ms = 0;
  // Not overdue: the worker leads instead.
  ASSERT_EQ(s.Next(worker, &item, &timeout_ms), Scheduler::Role::kLead);
  s.Handoff(worker, nullptr, 0);
  // A handshake thread takes it, with its readiness.
  ASSERT_TRUE(s.NextHandshake(&item));
  EXPECT_EQ(item.kind, WorkKind::kHandshake);
  EXPECT_EQ(item.slot, first);
  EXPECT_EQ(item.events, static_cast<uint32_t>(EPOLLIN));

  // With a bound of 1 ns, the next step is overdue by the time a worker
  // looks, and goes ahead of the leader role and of queued work.
  s.set_handshake_max_wait(1);
  s.Push(Event(7));
  s.PushHandshake(second, EPOLLOUT);
  ASSERT_EQ(s.Next(worker, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.kind, WorkKind::kHandshake);
  EXPECT_EQ(item.slot, second);
  EXPECT_EQ(item.events, static_cast<uint32_t>(EPOLLOUT));
  ASSERT_EQ(s.Next(worker, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.kind, WorkKind::kEvent);
  EXPECT_EQ(item.data, 7u);
}

// A leader with nothing running waits for the kernel; with a step queued,
// no longer than until the step falls due, and then it gives up the role
// and takes the step (else a step whose peer waits for the server's
// answer would wait for an unrelated event).
TEST(SchedulerHandshakeTest, LeaderWaitsOnlyUntilAStepFallsDue) {
  ConnectionTable table{4};
  Slot* slot = table.Allocate();
  ASSERT_NE(slot, nullptr);
  Scheduler s;
  bool worker = false;
  ReadyItem item;
  int timeout_ms = 0;
  ASSERT_EQ(s.Next(worker, &item, &timeout_ms), Scheduler::Role::kLead);
  EXPECT_EQ(timeout_ms, -1);
  s.set_handshake_max_wait(int64_t{3600} * 1000 * 1000 * 1000);  // an hour
  s.PushHandshake(slot, EPOLLIN);
  ASSERT_FALSE(s.RescueDue(&timeout_ms, /*waited=*/false));
  EXPECT_GT(timeout_ms, 3590 * 1000);
  EXPECT_LE(timeout_ms, 3600 * 1000);
  s.set_handshake_max_wait(1);
  ASSERT_TRUE(s.RescueDue(&timeout_ms, /*waited=*/true));
  ASSERT_EQ(s.Next(worker, &item, &timeout_ms), Scheduler::Role::kRun);
  EXPECT_EQ(item.kind, WorkKind::kHandshake);
  EXPECT_EQ(item.slot, slot);
  EXPECT_EQ(item.events, static_cast<uint32_t>(EPOLLIN));
}

TEST(SchedulerHandshakeTest, ShutdownReleasesAWaitingHandshakeThread) {
  Scheduler s;
  std::atomic<bool> returned{false};
  bool got = true;
  std::thread handshaker([&] {
    ReadyItem item;
    got = s.NextHandshake(&item);
    returned = true;
  });
  s.Shutdown();
  handshaker.join();
  EXPECT_TRUE(returned.load());
  EXPECT_FALSE(got);
}

}  // namespace baton::internal
