// Internal header: ConnectionTable, the concurrent map from epoll event data
// to live connections, and the claim protocol that serialises handlers.
//
// Every connection lives in a Slot. Slots are type-stable: once allocated, a
// slot's memory stays valid until the table is destroyed, so a thread holding
// a stale event can always look at the slot safely. What makes an event stale
// is the slot's generation, bumped each time a connection leaves the slot.
//
// epoll_event.data.u64 carries a ConnectionId: generation in bits 32..62,
// slot index in bits 0..31 (bit 63 stays clear; the reactor uses it for its
// own event sources). A new connection reusing the same file descriptor or
// slot gets a new generation, so an event armed for the old connection can
// never be delivered to the new one.
//
// The claim protocol. A slot's state word packs the generation with flags:
//   kLive     the slot holds a connection;
//   kClaimed  one thread owns the connection and may run its handler;
//   kPending  something happened while it was claimed (an event arrived on
//             another thread, a foreign Write or Close); the owner must look
//             again before letting go;
//   kCloseRequested / kAbortRequested / kTimedOut / kTimerDue /
//   kResumeRequested / kShutdownRequested  requests from other threads (or
//             from the timer queue), served by the owner;
//   kOutputClosed  the owner is closing it: Reactor::Write refuses.
//   kParked   claimed, but by no thread: the owner put it aside, disarmed,
//             until a request (a Write to it) or the scheduler's bound
//             (Scheduler::Park); whoever claims it next takes the claim
//             over (TryClaim, Unpark), exactly one of them.
// TryClaim and Release are single compare-and-swap loops over that word,
// and both check the generation inside the same CAS, so a claim for an old
// generation can never succeed on a reused slot (no ABA).
#ifndef BATON_INTERNAL_CONNECTION_TABLE_H_
#define BATON_INTERNAL_CONNECTION_TABLE_H_

#include <glog/logging.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "lib/internal/connection_state.h"
#include "lib/internal/mutex.h"
#include "lib/internal/output_queue.h"

namespace baton::internal {

// Flags in the low 32 bits of Slot::state.
enum SlotFlags : uint32_t {
  kLive = 1u << 0,
  kClaimed = 1u << 1,
  kPending = 1u << 2,
  kCloseRequested = 1u << 3,
  kAbortRequested = 1u << 4,
  kTimedOut = 1u << 5,
  // A per-connection timer (Connection::RunAfter) or a connect deadline or
  // back-off (Reactor::Connect) expired: the owner runs what is due.
  kTimerDue = 1u << 6,
  kResumeRequested = 1u << 7,    // Reactor::ResumeReading
  kShutdownRequested = 1u << 8,  // Reactor::ShutdownWrite
  // Set by the owner when the connection leaves ConnectionPhase::kOpen:
  // it takes no more output, so foreign Writes are refused and a closing
  // connection's queue can only shrink.
  kOutputClosed = 1u << 9,
  // With kClaimed: parked (see above). Only Park sets it, only TryClaim and
  // Unpark clear it, each in the one compare-and-swap that hands over the
  // claim.
  kParked = 1u << 10,
  // A TLS connection: its queue holds ciphertext, which only the owner (who
  // holds the session) can make, so a foreign Write queues plaintext in
  // Slot::tls_plain for the owner to encrypt. Set when the connection is
  // accepted on a TLS listener or made by a TLS Connect, or under out_mu
  // by Connection::StartTls; cleared by Free.
  kTlsOutput = 1u << 11,
};
constexpr uint32_t kRequestFlags = kCloseRequested | kAbortRequested |
                                   kTimedOut | kTimerDue | kResumeRequested |
                                   kShutdownRequested;
// The request of ForeignRequests::Request for a Reactor::Write: no flag, since
// whoever serves the claim flushes the queued output anyway. Zero, so that
// TryClaim raises nothing for it and Request can tell it from the others.
inline constexpr uint32_t kOutputQueued = 0;
static_assert((kOutputQueued & (kRequestFlags | kLive | kClaimed | kPending |
                                kOutputClosed | kParked)) == 0,
              "kOutputQueued must be no flag");

inline uint32_t GenerationOf(uint64_t state) {
  return static_cast<uint32_t>(state >> 32);
}
inline uint32_t FlagsOf(uint64_t state) { return static_cast<uint32_t>(state); }
inline uint64_t MakeState(uint32_t generation, uint32_t flags) {
  return (static_cast<uint64_t>(generation) << 32) | flags;
}
inline uint64_t MakeId(uint32_t generation, uint32_t index) {
  return (static_cast<uint64_t>(generation) << 32) | index;
}
inline uint32_t IndexOfId(uint64_t id) { return static_cast<uint32_t>(id); }
inline uint32_t GenerationOfId(uint64_t id) {
  return static_cast<uint32_t>(id >> 32);
}

// One connection's state. Fields are grouped by who may touch them.
struct alignas(64) Slot {
  // Generation (high 32 bits) and SlotFlags (low 32 bits). Any thread.
  std::atomic<uint64_t> state{0};

  // Owner-only: read and written only by the thread holding the claim.
  OwnerState owner;
  uint32_t index = 0;  // fixed at construction

  // Last read or write progress, CLOCK_MONOTONIC_COARSE milliseconds; written
  // by the owner, read by the idle sweep.
  std::atomic<int64_t> last_activity_ms{0};

  // Output, appended by any thread (Reactor::Write), flushed by the owner.
  // Allocated only while bytes are queued, so an idle connection costs no
  // buffer memory.
  Mutex out_mu;
  std::unique_ptr<OutputQueue> out ABSL_GUARDED_BY(out_mu);
  // A TLS connection's plaintext not yet encrypted (kTlsOutput), in the
  // order written: foreign Writes, and a SendFile's file range with
  // whatever the owner wrote behind it. The owner moves it through its
  // engine into `out` under its claim before it sends or encrypts anything
  // else (EncryptQueuedPlaintext); a file range a few records at a time, as
  // `out` drains. Allocated only while bytes wait.
  std::unique_ptr<OutputQueue> tls_plain ABSL_GUARDED_BY(out_mu);
  // Mirror of QueuedBytes() (out->bytes() plus tls_plain's, file bytes not
  // yet read included) for lock-free reads.
  std::atomic<size_t> out_bytes{0};

  // Which parking this slot's current (or last) kParked stands for: read
  // and written only under the scheduler's mutex (Scheduler::Park and its
  // bound), so a stale entry of an earlier parking is told apart.
  uint64_t park_ticket = 0;
};
// Three cache lines per connection, idle or not (docs/perf).
static_assert(sizeof(void*) != 8 || sizeof(Slot) <= 192, "Slot grew");

// The bytes queued on `slot`, ciphertext and plaintext: what out_bytes
// mirrors.
inline size_t QueuedBytes(const Slot* slot)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot->out_mu) {
  return (slot->out != nullptr ? slot->out->bytes() : 0) +
         (slot->tls_plain != nullptr ? slot->tls_plain->bytes() : 0);
}

// Debug check at every entry point that needs the caller to hold `slot`'s
// claim (active in tests, compiled out with NDEBUG).
inline void AssertClaimed(const Slot* slot) {
  DCHECK(FlagsOf(slot->state.load(std::memory_order_relaxed)) & kClaimed)
      << "slot " << slot->index << " used without holding its claim";
}

enum class ClaimResult {
  kClaimed,  // the caller now owns the connection
  kBusy,     // another thread owns it; kPending (and `request`) were set
  kStale,    // the id's connection is gone
};

class ConnectionTable {
 public:
  // Holds at most `capacity` connections at once.
  explicit ConnectionTable(size_t capacity);
  ~ConnectionTable();

  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  // Takes a free slot, marks it live and claimed by the caller under a fresh
  // generation. Returns nullptr when `capacity` connections are live.
  Slot* Allocate();

  // Ends the claimed connection in `slot`: bumps the generation (every id and
  // event for it is stale from here on) and returns the slot to the free
  // list. The caller must hold the claim and must have released every
  // resource the slot referred to.
  void Free(Slot* slot);

  // The slot with `index`, or nullptr if no such slot was ever allocated.
  // Safe from any thread, lock-free.
  Slot* Lookup(uint32_t index) const {
    const uint32_t chunk = index >> kChunkBits;
    if (chunk >= num_chunks_) return nullptr;
    Slot* base = chunks_[chunk].load(std::memory_order_acquire);
    if (base == nullptr) return nullptr;
    return &base[index & (kChunkSize - 1)];
  }

  // Claims the connection `generation` in `slot`. On kBusy, sets kPending
  // plus `request` so the owner serves them before it lets go. On kClaimed,
  // `request` is set too, for the caller to serve. A parked connection is
  // claimed (taken over from nobody): kClaimed.
  static ClaimResult TryClaim(Slot* slot, uint32_t generation,
                              uint32_t request = 0);

  // The owner parks its claimed connection: keeps kClaimed, sets kParked,
  // and must not touch the slot afterwards. Refused (false: the caller
  // keeps the claim, kPending is cleared) if work arrived while it was
  // held, as Release refuses. On success `*generation` is the one parked.
  static bool Park(Slot* slot, uint32_t* generation);

  // Takes over the claim of the parked connection `generation` (the bound
  // ran out). False if it is no longer parked (a TryClaim took it over) or
  // gone.
  static bool Unpark(Slot* slot, uint32_t generation);

  // Lets go of a claimed slot. Returns false, keeping the claim and clearing
  // kPending, if work arrived while it was held: the caller must serve it
  // and try again.
  static bool Release(Slot* slot);

  // Clears and returns the request flags of a claimed slot.
  static uint32_t TakeRequests(Slot* slot);

  static uint64_t IdOf(const Slot* slot) {
    return MakeId(GenerationOf(slot->state.load(std::memory_order_relaxed)),
                  slot->index);
  }

  // The id of the connection in `slot` whose state word read `state`.
  static uint64_t IdAt(const Slot* slot, uint64_t state) {
    return MakeId(GenerationOf(state), slot->index);
  }

  // Calls `fn(slot, state)` for every slot below index_bound() (read once)
  // whose state word, loaded with acquire, has kLive. From any thread; the
  // slot may change as soon as it is loaded (ids taken from `state` go
  // stale, claims decide).
  template <typename Fn>
  void ForEachLive(Fn fn) const {
    const uint32_t end = index_bound();
    for (uint32_t i = 0; i < end; ++i) {
      Slot* slot = Lookup(i);
      if (slot == nullptr) continue;
      const uint64_t state = slot->state.load(std::memory_order_acquire);
      if (!(FlagsOf(state) & kLive)) continue;
      fn(slot, state);
    }
  }

  // One past the highest index ever allocated; slots below it can be
  // visited with Lookup.
  uint32_t index_bound() const {
    return index_bound_.load(std::memory_order_acquire);
  }

  size_t live() const { return live_.load(std::memory_order_relaxed); }

 private:
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;

  const size_t capacity_;
  const uint32_t num_chunks_;
  // Chunk pointers, published with release once the chunk is built.
  std::unique_ptr<std::atomic<Slot*>[]> chunks_;
  std::atomic<uint32_t> index_bound_{0};
  std::atomic<size_t> live_{0};

  Mutex mu_;
  std::vector<uint32_t> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_TABLE_H_
