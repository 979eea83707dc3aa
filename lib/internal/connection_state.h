// Internal header: the owner-side state of one connection — its lifetime as
// one phase (ConnectionPhase) and every field only the claim holder touches
// (OwnerState). The transitions are listed, and checked, in one place:
// ConnectionPhaseAllows.
//
//   kNew ──OnOpen──▶ kOpen ──Close()──▶ kClosing ──unread input──▶ kLingering
//     │                ▲ │                   │                           │
//     │   connected:   │ └───────────────────┴──── Abort() ──▶ kAborting │
//     │   OnOpen       │                                           │     │
//     └─Connect()─▶ kConnecting                                    │     │
//     │                │ failed / timed out / cancelled:           │     │
//     │                │ OnClose(status), never OnOpen             ▼     │
//     └──────────────── teardown (OnClose unless kNew) ──▶ kClosed ◀─────┘
//
// kConnecting (Reactor::Connect): the handler exists, the socket (if an
// attempt is under way) is armed for EPOLLOUT only, no callback runs; a
// failed attempt closes its socket and, while attempts remain, waits out a
// back-off with no socket at all (fd -1) before the next one.
//
// kHandshaking (TLS): kNew (accepted) or kConnecting (connected) ─▶
// kHandshaking ─▶ kOpen when the handshake completes (OnOpen then). No
// callback has run; a failed or timed-out handshake tears an accepted
// connection down with no OnClose, as from kNew, and an outbound one with
// OnClose(status), as a failed connect. Connection::StartTls upgrades a
// kOpen connection without a phase change: its handshake runs in kOpen
// (TlsState::upgrading) and a failure owes OnClose.
//
// kClosed covers the OnClose call itself; when it returns the slot is freed
// and OwnerState is reset by one assignment.
#ifndef BATON_INTERNAL_CONNECTION_STATE_H_
#define BATON_INTERNAL_CONNECTION_STATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "lib/internal/round_policy.h"

namespace baton {
class ConnectionHandler;
}  // namespace baton

namespace baton::internal {

enum class ConnectionPhase : uint8_t {
  kNew,          // allocated; no handler yet, so no OnClose is owed
  kConnecting,   // Reactor::Connect: handler made, not connected, no OnOpen yet
  kHandshaking,  // TLS: handler made, handshake running; no OnOpen yet
  kOpen,         // OnOpen has run (or is running): serving
  kClosing,      // Close(): send what is queued, then close
  kLingering,    // output sent, SHUT_WR done: reading and discarding until EOF
  kAborting,     // Abort() inside a callback: torn down when it returns
  kClosed,       // OnClose is running: writes are dropped
};

const char* ConnectionPhaseName(ConnectionPhase phase);

// Whether the lifetime may move from `from` to `to`.
constexpr bool ConnectionPhaseAllows(ConnectionPhase from, ConnectionPhase to) {
  switch (to) {
    case ConnectionPhase::kNew:
      return false;
    case ConnectionPhase::kConnecting:
      return from == ConnectionPhase::kNew;
    case ConnectionPhase::kHandshaking:
      return from == ConnectionPhase::kNew ||
             from == ConnectionPhase::kConnecting;
    case ConnectionPhase::kOpen:
      return from == ConnectionPhase::kNew ||
             from == ConnectionPhase::kConnecting ||
             from == ConnectionPhase::kHandshaking;
    case ConnectionPhase::kClosing:
      return from == ConnectionPhase::kOpen;
    case ConnectionPhase::kLingering:
      return from == ConnectionPhase::kClosing;
    case ConnectionPhase::kAborting:
      return from == ConnectionPhase::kOpen ||
             from == ConnectionPhase::kClosing ||
             from == ConnectionPhase::kLingering;
    case ConnectionPhase::kClosed:
      return from != ConnectionPhase::kClosed;
  }
  return false;
}

// Rarely used owner state, allocated on first use so that a plain connection
// (the echo hot path) pays one null pointer: retained input, per-connection
// timers, an outbound connect in progress. Defined in connection_extras.h.
struct OwnerExtras;
struct OwnerExtrasDeleter {
  void operator()(OwnerExtras* extras) const;
};

// Everything about a connection that only the thread holding its claim may
// read or write. Handed from owner to owner by the release/acquire on the
// slot's state word. A freed slot's state is `OwnerState{}`. Fields are
// grouped by purpose, and ordered so that no padding falls between them
// (an idle connection's memory is one Slot: keep sizeof(OwnerState) down).
struct OwnerState {
  // Lifetime.
  ConnectionHandler* handler = nullptr;  // owned; deleted at teardown
  uint64_t linger_timer = 0;             // kLingering: the timer that aborts it
  int fd = -1;  // set when filled; a connect attempt sets and clears it
  ConnectionPhase phase = ConnectionPhase::kNew;  // SetPhase

  // Registration with epoll.
  bool registered = false;  // added to epoll: set by the first Rearm
  // Epoll still has the fd armed with `armed_interest`, as far as the owner
  // can tell: set by Rearm, cleared when an event for it was taken by a
  // thread (Dispatch claimed it, or found it busy and left it pending).
  // An event a leader took and that nobody dispatched yet may have disarmed
  // it without clearing this; that event's dispatch re-arms it.
  bool armed = false;
  uint32_t armed_interest = 0;  // set by Rearm with `armed`

  // Writing.
  // errno of a failed send by the owner's Write (OwnerWrite) or at another
  // connection's Write (SendQueuedNow); the next round tears it down.
  int write_error = 0;
  bool corked = false;        // the last direct send had MSG_MORE; cleared
                              // when the round's flush pushes it
  bool drained_due = false;   // output was queued: OnDrained is owed; cleared
                              // when a flush drains the queue
  bool shutdown_due = false;  // ShutdownWrite(): shut once output is sent
  bool write_shut = false;    // shutdown(SHUT_WR) done

  // Reading.
  bool peer_closed = false;  // a read returned 0
  bool user_paused = false;  // Connection::PauseReading / ResumeReading
  bool hwm_paused = false;   // set by a read past the output high-water
                             // mark, cleared when the backlog halves
  bool input_left = false;   // ReadInput yielded with input still waiting;
                             // cleared before each round
  // Inside OnData: the size of the data handed over (Connection::Retain
  // clamps to it) and how many of its last bytes the handler retained.
  // Set by Deliver around the upcall, zero outside it.
  size_t delivered = 0;
  size_t retain = 0;

  // After a round: re-read, yield, park or re-arm (round_policy.h).
  RoundPolicyState policy;

  std::unique_ptr<OwnerExtras, OwnerExtrasDeleter> extras;

  bool open() const { return phase == ConnectionPhase::kOpen; }
  // Callbacks may still run (timers, OnDrained): opened and not closed.
  bool serving() const {
    return phase == ConnectionPhase::kOpen ||
           phase == ConnectionPhase::kClosing ||
           phase == ConnectionPhase::kLingering;
  }
  // Input is wanted: delivered to OnData, or drained while lingering.
  bool wants_input() const {
    if (peer_closed) return false;
    if (phase == ConnectionPhase::kLingering ||
        phase == ConnectionPhase::kHandshaking) {
      return true;
    }
    return phase == ConnectionPhase::kOpen && !user_paused && !hwm_paused;
  }
};
// Per-connection memory is a measured figure (docs/perf): a field added
// here should take padding that is already there.
static_assert(sizeof(void*) != 8 || sizeof(OwnerState) <= 72,
              "OwnerState grew");

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_STATE_H_
