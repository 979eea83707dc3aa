// Internal header: helpers for a TLS connection's engine (TlsState in its
// OwnerExtras). Every function here runs with the caller holding the
// slot's claim.
#ifndef BATON_INTERNAL_CONNECTION_TLS_H_
#define BATON_INTERNAL_CONNECTION_TLS_H_

#include <string>

#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_table.h"
#include "lib/internal/output_queue.h"
#include "lib/internal/worker_context.h"

namespace baton::internal {

// The connection's TLS state, or null for a plain connection (one null
// test when it has no extras).
inline TlsState* TlsOf(OwnerState& owner) {
  return owner.extras ? owner.extras->tls.get() : nullptr;
}

// A TLS connection with plaintext left in its engine (TlsState).
inline bool TlsInputLeft(OwnerState& owner) {
  const TlsState* tls = TlsOf(owner);
  return tls != nullptr && tls->plaintext_left;
}

// Moves the ciphertext the engine produced (handshake records, encrypted
// writes, alerts, close_notify) into the output queue, for the round's
// flush to send. The queue's bytes, and so the high-water mark, count
// ciphertext.
inline void QueueTlsOutput(Slot* slot, TlsState& tls) {
  if (tls.session->PendingOutput() == 0) return;
  std::string ciphertext;
  tls.session->TakeOutput(&ciphertext);
  MutexLock lock(&slot->out_mu);
  if (slot->out == nullptr) slot->out = NewOutputQueue();
  slot->out->Append(ciphertext);
  slot->out_bytes.store(slot->out->bytes(), std::memory_order_release);
  slot->owner.drained_due = true;
}

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_TLS_H_
