// Tests for ConnectionTable: generations, the claim protocol, concurrency.
#include "lib/internal/connection_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace baton::internal {
namespace {

TEST(ConnectionTableTest, AllocateClaimsAndFreeBumpsGeneration) {
  ConnectionTable table(4);
  Slot* slot = table.Allocate();
  ASSERT_NE(slot, nullptr);
  const uint64_t id = ConnectionTable::IdOf(slot);
  EXPECT_NE(id, 0u);
  EXPECT_EQ(id >> 63, 0u) << "bit 63 is reserved for internal sources";
  EXPECT_TRUE(FlagsOf(slot->state.load()) & kClaimed);
  EXPECT_EQ(table.Lookup(IndexOfId(id)), slot);
  EXPECT_EQ(table.live(), 1u);

  table.Free(slot);
  EXPECT_EQ(table.live(), 0u);
  // The old id is stale from now on.
  EXPECT_EQ(ConnectionTable::TryClaim(slot, GenerationOfId(id)),
            ClaimResult::kStale);
}

TEST(ConnectionTableTest, ReusedSlotRejectsOldGeneration) {
  ConnectionTable table(1);
  Slot* first = table.Allocate();
  const uint64_t old_id = ConnectionTable::IdOf(first);
  table.Free(first);
  Slot* second = table.Allocate();
  ASSERT_EQ(second, first) << "capacity 1: the same slot must be reused";
  const uint64_t new_id = ConnectionTable::IdOf(second);
  EXPECT_EQ(IndexOfId(old_id), IndexOfId(new_id));
  EXPECT_NE(GenerationOfId(old_id), GenerationOfId(new_id));
  ASSERT_TRUE(ConnectionTable::Release(second));
  // A stale event for the old connection can neither claim the new one nor
  // leave work for it.
  EXPECT_EQ(ConnectionTable::TryClaim(second, GenerationOfId(old_id),
                                      kCloseRequested),
            ClaimResult::kStale);
  EXPECT_EQ(FlagsOf(second->state.load()), kLive);
  EXPECT_EQ(ConnectionTable::TryClaim(second, GenerationOfId(new_id)),
            ClaimResult::kClaimed);
}

TEST(ConnectionTableTest, CapacityIsEnforced) {
  ConnectionTable table(2);
  Slot* a = table.Allocate();
  Slot* b = table.Allocate();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(table.Allocate(), nullptr);
  table.Free(a);
  EXPECT_NE(table.Allocate(), nullptr);
}

TEST(ConnectionTableTest, GrowsAcrossChunks) {
  ConnectionTable table(5000);
  std::vector<Slot*> slots;
  for (int i = 0; i < 5000; ++i) {
    Slot* s = table.Allocate();
    ASSERT_NE(s, nullptr) << i;
    slots.push_back(s);
  }
  EXPECT_EQ(table.index_bound(), 5000u);
  for (Slot* s : slots) EXPECT_EQ(table.Lookup(s->index), s);
  EXPECT_EQ(table.Lookup(6000), nullptr);
}

TEST(ConnectionTableTest, BusyClaimLeavesPendingWorkForOwner) {
  ConnectionTable table(1);
  Slot* slot = table.Allocate();
  const uint32_t gen = GenerationOfId(ConnectionTable::IdOf(slot));
  EXPECT_EQ(ConnectionTable::TryClaim(slot, gen, kCloseRequested),
            ClaimResult::kBusy);
  // The owner must not be able to let go without seeing the work.
  EXPECT_FALSE(ConnectionTable::Release(slot));
  EXPECT_EQ(ConnectionTable::TakeRequests(slot), kCloseRequested);
  EXPECT_TRUE(ConnectionTable::Release(slot));
  EXPECT_EQ(FlagsOf(slot->state.load()), kLive);
}

// Many threads race to claim one connection; the claim must be exclusive and
// no "pending" signal may be lost: every busy claimer's visit is seen by the
// owner before it releases.
TEST(ConnectionTableTest, ClaimIsExclusiveUnderContention) {
  ConnectionTable table(1);
  Slot* slot = table.Allocate();
  const uint32_t gen = GenerationOfId(ConnectionTable::IdOf(slot));
  ASSERT_TRUE(ConnectionTable::Release(slot));

  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<long> busy{0};
  std::atomic<long> served_rounds{0};
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        if (ConnectionTable::TryClaim(slot, gen) != ClaimResult::kClaimed) {
          busy.fetch_add(1);
          continue;
        }
        do {
          const int now = inside.fetch_add(1) + 1;
          int seen = max_inside.load();
          while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
          }
          inside.fetch_sub(1);
          served_rounds.fetch_add(1);
        } while (!ConnectionTable::Release(slot));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_inside.load(), 1);
  EXPECT_EQ(FlagsOf(slot->state.load()), kLive) << "claim or pending leaked";
  EXPECT_GE(served_rounds.load(), kThreads * kIterations - busy.load());
}

}  // namespace
}  // namespace baton::internal
