// Internal: ConnectionTable and the claim protocol.
#include "lib/internal/connection_table.h"

#include <glog/logging.h>

#include <algorithm>

namespace baton::internal {
namespace {

// Generations use 31 bits so that bit 63 of an id stays clear, and skip 0 so
// that a zero ConnectionId is never valid.
uint32_t NextGeneration(uint32_t generation) {
  uint32_t next = (generation + 1) & 0x7fffffffu;
  return next == 0 ? 1 : next;
}

}  // namespace

ConnectionTable::ConnectionTable(size_t capacity)
    : capacity_(std::max<size_t>(capacity, 1)),
      num_chunks_(
          static_cast<uint32_t>((capacity_ + kChunkSize - 1) / kChunkSize)),
      chunks_(new std::atomic<Slot*>[num_chunks_]) {
  CHECK_LE(capacity_, size_t{1} << 31) << "connection table too large";
  for (uint32_t i = 0; i < num_chunks_; ++i) {
    chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
}

ConnectionTable::~ConnectionTable() {
  for (uint32_t i = 0; i < num_chunks_; ++i) {
    delete[] chunks_[i].load(std::memory_order_relaxed);
  }
}

Slot* ConnectionTable::Allocate() {
  Slot* slot = nullptr;
  {
    MutexLock lock(&mu_);
    if (live_.load(std::memory_order_relaxed) >= capacity_) return nullptr;
    if (!free_.empty()) {
      // LIFO: the most recently freed slot is the likeliest to be in cache.
      slot = Lookup(free_.back());
      free_.pop_back();
    } else {
      const uint32_t index = index_bound_.load(std::memory_order_relaxed);
      const uint32_t chunk = index >> kChunkBits;
      CHECK_LT(chunk, num_chunks_);
      Slot* base = chunks_[chunk].load(std::memory_order_relaxed);
      if (base == nullptr) {
        base = new Slot[kChunkSize];
        for (uint32_t i = 0; i < kChunkSize; ++i) {
          base[i].index = (chunk << kChunkBits) + i;
          base[i].state.store(MakeState(1, 0), std::memory_order_relaxed);
        }
        chunks_[chunk].store(base, std::memory_order_release);
      }
      slot = &base[index & (kChunkSize - 1)];
      index_bound_.store(index + 1, std::memory_order_release);
    }
    live_.fetch_add(1, std::memory_order_relaxed);
  }
  const uint64_t old = slot->state.load(std::memory_order_relaxed);
  DCHECK_EQ(FlagsOf(old), 0u);
  // Claimed from birth: the creating thread sets the connection up before
  // any other thread can touch it.
  slot->state.store(MakeState(GenerationOf(old), kLive | kClaimed),
                    std::memory_order_release);
  return slot;
}

void ConnectionTable::Free(Slot* slot) {
  const uint64_t old = slot->state.load(std::memory_order_relaxed);
  DCHECK(FlagsOf(old) & kClaimed);
  // Release: everything the owner did happens-before a later Allocate.
  slot->state.store(MakeState(NextGeneration(GenerationOf(old)), 0),
                    std::memory_order_release);
  MutexLock lock(&mu_);
  free_.push_back(slot->index);
  live_.fetch_sub(1, std::memory_order_relaxed);
}

ClaimResult ConnectionTable::TryClaim(Slot* slot, uint32_t generation,
                                      uint32_t request) {
  uint64_t state = slot->state.load(std::memory_order_acquire);
  for (;;) {
    if (GenerationOf(state) != generation || !(FlagsOf(state) & kLive)) {
      return ClaimResult::kStale;
    }
    const bool parked = FlagsOf(state) & kParked;
    const bool busy = (FlagsOf(state) & kClaimed) && !parked;
    const uint64_t desired =
        parked ? ((state & ~uint64_t{kParked}) | request)
               : (state | request | (busy ? kPending : kClaimed));
    if (slot->state.compare_exchange_weak(state, desired,
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      return busy ? ClaimResult::kBusy : ClaimResult::kClaimed;
    }
  }
}

bool ConnectionTable::Release(Slot* slot) {
  uint64_t state = slot->state.load(std::memory_order_acquire);
  for (;;) {
    DCHECK(FlagsOf(state) & kClaimed);
    const bool pending = FlagsOf(state) & (kPending | kRequestFlags);
    const uint64_t desired =
        pending ? (state & ~uint64_t{kPending}) : (state & ~uint64_t{kClaimed});
    if (slot->state.compare_exchange_weak(state, desired,
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      return !pending;
    }
  }
}

bool ConnectionTable::Park(Slot* slot, uint32_t* generation) {
  uint64_t state = slot->state.load(std::memory_order_acquire);
  for (;;) {
    DCHECK((FlagsOf(state) & (kClaimed | kParked)) == kClaimed);
    const bool pending = FlagsOf(state) & (kPending | kRequestFlags);
    const uint64_t desired =
        pending ? (state & ~uint64_t{kPending}) : (state | kParked);
    if (slot->state.compare_exchange_weak(state, desired,
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      *generation = GenerationOf(state);
      return !pending;
    }
  }
}

bool ConnectionTable::Unpark(Slot* slot, uint32_t generation) {
  uint64_t state = slot->state.load(std::memory_order_acquire);
  for (;;) {
    if (GenerationOf(state) != generation ||
        (FlagsOf(state) & (kLive | kParked)) != (kLive | kParked)) {
      return false;
    }
    if (slot->state.compare_exchange_weak(state, state & ~uint64_t{kParked},
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      return true;
    }
  }
}

uint32_t ConnectionTable::TakeRequests(Slot* slot) {
  // Requests are rare: a plain load keeps the common path free of a locked
  // read-modify-write.
  if (!(FlagsOf(slot->state.load(std::memory_order_acquire)) & kRequestFlags)) {
    return 0;
  }
  const uint64_t old = slot->state.fetch_and(~uint64_t{kRequestFlags},
                                             std::memory_order_acq_rel);
  return FlagsOf(old) & kRequestFlags;
}

}  // namespace baton::internal
