// Internal header: what the owner of a connection does after serving one
// round of it (ConnectionIo::Serve) — yield to other ready work, park it,
// queue it for a re-read, or re-arm and release it — decided by one pure
// function (Decide) of plain facts about the round (RoundFacts), the
// claim's progress (RoundPlan) and the connection's adaptive state
// (RoundPolicyState). Nothing here touches a socket, an atomic or the
// scheduler: Serve does the I/O, gathers the facts and applies the outcome.
//
// A re-read: the connection, still claimed, goes to the back of the ready
// queue and is read again after the work queued before it, instead of
// being re-armed at once (ReactorOptions::reread_rounds). Parking: a
// connection that relayed what it read waits, claimed and disarmed, for
// the Write that answers it (ReactorOptions::park_relays, Scheduler).
#ifndef BATON_INTERNAL_ROUND_POLICY_H_
#define BATON_INTERNAL_ROUND_POLICY_H_

#include <cstddef>
#include <cstdint>

namespace baton::internal {

enum class WorkKind : uint8_t;  // lib/internal/scheduler.h

// A re-read that finds input raises the confidence up to this.
inline constexpr uint8_t kMaxRereadConfidence = 3;
// Re-arms after a missed re-read before the next try: starts at the least,
// doubles up to the most while the tries keep missing.
inline constexpr uint8_t kMinRereadBackoff = 8;
inline constexpr uint8_t kMaxRereadBackoff = 64;
// Chances to park skipped after a park that ended without its answer.
inline constexpr uint8_t kMaxParkBackoff = 64;

// The adaptive per-connection state of the policy, in OwnerState. Only the
// claim holder touches it; OwnerState{} resets it with the slot.
struct RoundPolicyState {
  // Whether input will be waiting when the connection is read again right
  // after being served (0..kMaxRereadConfidence; 0: re-arm instead).
  // Decide: a re-read that found input raises it by one, one that found
  // nothing zeroes it; the `reread_backoff`th re-arm after that sets it
  // back to 1.
  uint8_t reread_confidence = 1;
  // Re-arms since a missed re-read: zeroed by the miss, counted up by
  // Decide while `reread_confidence` is 0 and a re-read was otherwise due.
  uint8_t reread_skips = 0;
  // `reread_skips` that give the re-read another chance: reset to
  // kMinRereadBackoff by a hit, doubled (to kMaxRereadBackoff) each time
  // the skips run out.
  uint8_t reread_backoff = kMinRereadBackoff;
  // Chances to park left to skip: set to `park_backoff` by TakeOverPark
  // when a park ended without its answer, counted down by Decide at each
  // chance it skips.
  uint8_t park_skips = 0;
  // TakeOverPark: doubled (from 1, to kMaxParkBackoff) when a park's bound
  // ran out or the reactor went idle first; zeroed by a park a request
  // ended.
  uint8_t park_backoff = 0;
  // Parked: set by Decide (outcome kPark) before the owner hands it to
  // Scheduler::Park, cleared by ServeAgain if that was refused, and by
  // TakeOverPark in whoever takes the claim over.
  bool parked = false;
};

// How a connection's park ended, for the caller to count.
enum class ParkEnd : uint8_t {
  kNotParked,  // it was not parked
  kWoken,      // a request (a Write to it) took it over
  kExpired,    // the scheduler's bound ran out
  kIdle,       // the reactor went idle and took it back to re-arm it
};

// What the claim's next round serves, carried from round to round.
struct RoundPlan {
  uint32_t revents = 0;  // the readiness the round serves (epoll events)
  // 0, or which consecutive re-read this claim is (from 1).
  int reread_round = 0;
  // The next round is a re-read: its read counts as a hit or a miss.
  bool reread = false;
  // Woken from a park by a request: its input follows what is being sent
  // now, so if nothing was read, read it after the other ready work.
  bool read_later = false;
};

// Plain facts about the round just served, gathered by Serve.
struct RoundFacts {
  size_t bytes_read = 0;       // read during the round
  bool input_left = false;     // reading stopped (yielded) with input left
  bool relayed = false;        // a Write ran on this thread during the round
  bool wants_input = false;    // OwnerState::wants_input()
  bool open = false;           // ConnectionPhase::kOpen
  bool registered = false;     // added to epoll
  bool armed = false;          // still armed, as far as the owner can tell
  bool output_queued = false;  // output waits in its queue
  bool write_error = false;    // a direct send failed
  bool on_reactor_thread = false;
  bool has_idle_thread = false;  // Scheduler::has_idle_thread()
  bool has_queued_work = false;  // Scheduler::has_queued_work()
  // Configuration: consecutive re-reads before a re-arm (INT_MAX: no
  // bound), and whether relays may be parked.
  int max_reread_rounds = 0;
  bool park_enabled = false;
};

enum class RoundOutcome : uint8_t {
  // Input is waiting and so is other work: queue it, claimed, as kYield.
  kYield,
  // It relayed what it read: park it (Scheduler::Park) until the answer.
  kPark,
  // Woken from a park by a request and nothing read: queue it, claimed,
  // as re-read round 1, after the other ready work.
  kReadLater,
  // It read input: queue it, claimed, as the next re-read round.
  kReread,
  // Re-arm it and release the claim.
  kRearm,
};

struct RoundDecision {
  RoundOutcome outcome = RoundOutcome::kRearm;
  int reread_round = 0;  // kReadLater / kReread: the round to queue it as
  bool reread_counted = false;  // the round was a re-read (counted)
  bool reread_hit = false;      // ... and it found input
};

// Taking over a claim: clears `parked` and returns how the park ended
// (kNotParked if it was not parked), adapting the park back-off.
ParkEnd TakeOverPark(WorkKind kind, RoundPolicyState* state);

// The first round of a claim that work of `kind` brought: `revents` are an
// event's epoll events, `reread_round` a kReread's round; `unparked` says
// the claim was taken over from a park.
RoundPlan PlanServe(WorkKind kind, uint32_t revents, int reread_round,
                    bool unparked);

// After a round: what to do, updating the plan and the adaptive state.
RoundDecision Decide(const RoundFacts& facts, RoundPlan* plan,
                     RoundPolicyState* state);

// A park refused, or a release that found something pending: serve
// another round that looks at everything (a read that finds nothing is
// cheap).
void ServeAgain(RoundPlan* plan, RoundPolicyState* state);

}  // namespace baton::internal

#endif  // BATON_INTERNAL_ROUND_POLICY_H_
