// Internal header: ConnectionInput, the input side of serving a claimed
// connection: reading the socket into the worker's buffer (or behind input
// the handler retained), OnData and what the handler retains, OnPeerClosed.
// Every function here runs with the caller holding the slot's claim.
//
// Owns: nothing (retained input lives in the connection's OwnerExtras, the
//   read buffer in the worker's WorkerContext).
// Uses: ReactorOptions, Scheduler (is other work waiting), CounterSet.
// Calls: ConnectionLifetime (Upcall, Teardown, SetPhase).
#ifndef BATON_INTERNAL_CONNECTION_INPUT_H_
#define BATON_INTERNAL_CONNECTION_INPUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "baton/reactor.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/counter_set.h"
#include "lib/internal/scheduler.h"

namespace baton::internal {

class ConnectionLifetime;
struct TlsState;

class ConnectionInput {
 public:
  // `lifetime` may not be constructed yet.
  ConnectionInput(const ReactorOptions& options, const Scheduler& scheduler,
                  CounterSet& counters, ConnectionLifetime* lifetime);
  ConnectionInput(const ConnectionInput&) = delete;
  ConnectionInput& operator=(const ConnectionInput&) = delete;

  // Reads what `revents` says is waiting and delivers it; adds the bytes
  // read to `*bytes_read`. Sets OwnerState::input_left if it stopped with
  // input left to let queued work go first. False if torn down.
  bool ReadInput(Slot* slot, uint32_t revents, size_t* bytes_read);

 private:
  // Hands `data` to OnData and keeps what the handler retained; false if
  // torn down. `in_extras`: `data` is the retained buffer itself.
  bool Deliver(Slot* slot, absl::string_view data, bool in_extras);
  // ReadInput for a TLS connection (connection_tls.cc): ciphertext read
  // and fed to the engine, plaintext drained to OnData. False if torn down.
  bool ReadTlsInput(Slot* slot, TlsState& tls, uint32_t revents,
                    size_t* bytes_read);
  // Advances the handshake (OnOpen when it completes), hands the engine's
  // plaintext to OnData until it has none or reading stops (then
  // TlsState::plaintext_left), and acts on the peer's close_notify,
  // truncation or failure. False if torn down.
  bool DrainTls(Slot* slot, TlsState& tls);
  void Count(std::atomic<uint64_t> WorkerCounters::*field, uint64_t n = 1) {
    counters_.Count(field, n);
  }

  const ReactorOptions& options_;
  // Reads stamp last_activity_ms (ConnectionLifetime::TracksActivity).
  const bool track_activity_;
  const Scheduler& scheduler_;
  CounterSet& counters_;
  ConnectionLifetime* const lifetime_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_INPUT_H_
