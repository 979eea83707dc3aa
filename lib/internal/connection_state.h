// Internal header: the owner-side state of one connection — its lifetime as
// one phase (ConnectionPhase) and every field only the claim holder touches
// (OwnerState). The transitions are listed, and checked, in one place:
// ConnectionPhaseAllows.
//
//   kNew ──OnOpen──▶ kOpen ──Close()──▶ kClosing ──unread input──▶ kLingering
//     │                │                   │                           │
//     │                └───────────────────┴──── Abort() ──▶ kAborting │
//     │                                                            │   │
//     └──────────────── teardown (OnClose unless kNew) ──▶ kClosed ◀───┘
//
// kClosed covers the OnClose call itself; when it returns the slot is freed
// and OwnerState is reset by one assignment.
#ifndef BATON_INTERNAL_CONNECTION_STATE_H_
#define BATON_INTERNAL_CONNECTION_STATE_H_

#include <cstdint>

namespace baton {
class ConnectionHandler;
}  // namespace baton

namespace baton::internal {

enum class ConnectionPhase : uint8_t {
  kNew,        // allocated; no handler yet, so no OnClose is owed
  kOpen,       // OnOpen has run (or is running): serving
  kClosing,    // Close(): send what is queued, then close
  kLingering,  // output sent, SHUT_WR done: reading and discarding until EOF
  kAborting,   // Abort() inside a callback: torn down when it returns
  kClosed,     // OnClose is running: writes are dropped
};

const char* ConnectionPhaseName(ConnectionPhase phase);

// Whether the lifetime may move from `from` to `to`.
constexpr bool ConnectionPhaseAllows(ConnectionPhase from,
                                     ConnectionPhase to) {
  switch (to) {
    case ConnectionPhase::kNew:
      return false;
    case ConnectionPhase::kOpen:
      return from == ConnectionPhase::kNew;
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

// Everything about a connection that only the thread holding its claim may
// read or write. Handed from owner to owner by the release/acquire on the
// slot's state word. A freed slot's state is `OwnerState{}`.
struct OwnerState {
  int fd = -1;
  ConnectionHandler* handler = nullptr;  // owned; deleted at teardown
  ConnectionPhase phase = ConnectionPhase::kNew;
  bool registered = false;   // added to epoll
  bool peer_closed = false;  // read returned 0
  bool user_paused = false;  // Connection::PauseReading()
  bool hwm_paused = false;   // paused by the output high-water mark
  bool drained_due = false;  // output was queued: OnDrained is owed
  bool corked = false;       // the last direct send had MSG_MORE
  int write_error = 0;       // errno of a failed direct send
  // Confidence (0..3) that input will be waiting when this connection is
  // read again right after being served: see ReactorOptions::
  // speculative_rounds. `reread_skips` counts re-arms since a miss.
  uint8_t speculation = 1;
  uint8_t reread_skips = 0;
  uint64_t linger_timer = 0;  // kLingering: the timer that aborts it

  bool open() const { return phase == ConnectionPhase::kOpen; }
  // Input is wanted: delivered to OnData, or drained while lingering.
  bool wants_input() const {
    if (peer_closed) return false;
    if (phase == ConnectionPhase::kLingering) return true;
    return phase == ConnectionPhase::kOpen && !user_paused && !hwm_paused;
  }
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_STATE_H_
