// Tests for LeaderFollowerGate: one leader at a time, no lost hand-off.
#include "lib/internal/leader_follower.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace baton::internal {
namespace {

TEST(LeaderFollowerGateTest, SingleThreadNeverWakesAnyone) {
  LeaderFollowerGate gate;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(gate.BecomeLeader());
    EXPECT_TRUE(gate.has_leader());
    EXPECT_FALSE(gate.PromoteSuccessor()) << "no follower sleeps";
    EXPECT_FALSE(gate.has_leader());
  }
}

TEST(LeaderFollowerGateTest, AtMostOneLeaderAndEveryRoundCompletes) {
  LeaderFollowerGate gate;
  std::atomic<int> leaders{0};
  std::atomic<int> max_leaders{0};
  std::atomic<int> rounds{0};
  constexpr int kThreads = 4;
  constexpr int kRounds = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (gate.BecomeLeader()) {
        const int now = leaders.fetch_add(1) + 1;
        int seen = max_leaders.load();
        while (now > seen && !max_leaders.compare_exchange_weak(seen, now)) {
        }
        leaders.fetch_sub(1);
        gate.PromoteSuccessor();
        // "Handling events": the role is already free for someone else.
        if (rounds.fetch_add(1) + 1 >= kRounds) gate.Shutdown();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_leaders.load(), 1);
  EXPECT_GE(rounds.load(), kRounds);
}

TEST(LeaderFollowerGateTest, PromotionWakesASleepingFollower) {
  LeaderFollowerGate gate;
  ASSERT_TRUE(gate.BecomeLeader());
  std::atomic<bool> follower_led{false};
  std::thread follower([&] {
    if (gate.BecomeLeader()) {
      follower_led = true;
      gate.PromoteSuccessor();
    }
  });
  // Wait (bounded) until the follower sleeps, then hand over.
  for (int i = 0; i < 5000 && gate.sleeping_followers() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(gate.sleeping_followers(), 1);
  EXPECT_TRUE(gate.PromoteSuccessor());
  follower.join();
  EXPECT_TRUE(follower_led);
}

TEST(LeaderFollowerGateTest, ShutdownReleasesSleepers) {
  LeaderFollowerGate gate;
  ASSERT_TRUE(gate.BecomeLeader());
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      if (!gate.BecomeLeader()) refused.fetch_add(1);
    });
  }
  gate.Shutdown();
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 3);
  EXPECT_FALSE(gate.BecomeLeader());
}

}  // namespace
}  // namespace baton::internal
