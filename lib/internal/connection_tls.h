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
// Moves the engine's pending ciphertext into the slot's output queue
// (made if there is none), straight from the engine: one copy. The caller
// holds slot->out_mu.
inline void MoveCiphertextLocked(Slot* slot, tls::TlsSession& session) {
  const size_t pending = session.PendingOutput();
  if (pending == 0) return;
  if (slot->out == nullptr) slot->out = NewOutputQueue();
  char* space = slot->out->AppendSpace(pending);
  slot->out->TrimBack(pending - session.TakeOutput(space, pending));
}

inline void QueueTlsOutput(Slot* slot, TlsState& tls) {
  if (tls.session->PendingOutput() == 0) return;
  MutexLock lock(&slot->out_mu);
  MoveCiphertextLocked(slot, *tls.session);
  slot->out_bytes.store(QueuedBytes(slot), std::memory_order_release);
  slot->owner.drained_due = true;
}

// The plaintext a TLS connection queued (Slot::tls_plain) goes through
// its engine in the order written; only the claim holder may touch the
// session. Foreign Writes (Reactor::Write from another thread, or another
// connection's handler) always queue there. SendFile queues its file range
// there, and the owner's own Writes go behind it until it is read. The
// owner encrypts what is queued into the output queue here, before
// anything it encrypts itself (Connection::Write, close_notify) and before
// every flush: byte chunks whole, a file range one record (16 KiB) at a
// time while the output queue holds less than a few records of
// ciphertext, so a large file is read as the socket drains and never sits
// in memory. Returns an errno (and sets the owner's write_error) if a file
// could not be read (EIO: shorter than its range), else 0.
//
// Order: a foreign Write appends under out_mu; this takes what was
// appended so far, ahead of the owner's own bytes. So a foreign Write that
// returned before the handler's Connection::Write began goes out first,
// and one that comes later goes out after it: the same order a plain
// connection's queue gives. Plaintext given to a closing or failed session
// is dropped, as a plain queue is at teardown.
int EncryptQueuedPlaintext(Slot* slot, TlsState& tls);

// Close or ShutdownWrite on a TLS connection: close_notify, queued behind
// the plaintext still queued (a file being read), so it is sent last.
void CloseTlsAfterOutput(Slot* slot, TlsState& tls);

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_TLS_H_
