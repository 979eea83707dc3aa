// Internal: a TLS connection's output: plaintext queued in Slot::tls_plain
// (foreign Writes, a file being sent and what was written behind it)
// encrypted into the output queue as it drains, the owner's Write and
// SendFile, and close_notify after everything written. Every function here
// runs with the caller holding the slot's claim.
#include <utility>

#include "lib/internal/connection_extras.h"
#include "lib/internal/connection_output.h"
#include "lib/internal/connection_tls.h"

namespace baton::internal {
namespace {

// A file is read and encrypted in blocks of one TLS record...
constexpr size_t kFileBlock = 16384;
// ...while the output queue holds less ciphertext than this: what a file
// being sent costs in memory, beyond the block it is read into.
constexpr size_t kFileAhead = 4 * kFileBlock;

}  // namespace

int EncryptQueuedPlaintext(Slot* slot, TlsState& tls) {
  tls::TlsSession& session = *tls.session;
  int error = 0;
  bool close_now = false;
  {
    MutexLock lock(&slot->out_mu);
    OutputQueue* plain = slot->tls_plain.get();
    if (plain == nullptr) {
      close_now = tls.close_due;
    } else {
      std::string& block = tls.file_block;
      while (!plain->empty()) {
        if (plain->front_is_file() &&
            (slot->out != nullptr ? slot->out->bytes() : 0) >= kFileAhead) {
          break;  // the rest of the file when the queue has drained
        }
        block.clear();
        if (plain->TakeFront(kFileBlock, &block, &error) == 0) {
          if (slot->out != nullptr && !slot->out->empty()) {
            // What came before is sent first, as sendfile(2) would.
            error = 0;
            break;
          }
          plain->Clear();  // the stream is broken: nothing after it goes
          if (slot->owner.write_error == 0) slot->owner.write_error = error;
          tls.close_due = false;  // and no close_notify either
          break;
        }
        // Held until the handshake completes; refused (dropped) once
        // closing or failed.
        if (!session.Write(block).ok()) {
          plain->Clear();
          break;
        }
        MoveCiphertextLocked(slot, session);
      }
      if (plain->empty()) {
        slot->tls_plain.reset();
        std::string().swap(block);
        close_now = tls.close_due;
      }
      // Always: the plaintext left the count even if no ciphertext came.
      slot->out_bytes.store(QueuedBytes(slot), std::memory_order_release);
      slot->owner.drained_due = true;
    }
  }
  if (close_now) {
    tls.close_due = false;
    session.Close();
    QueueTlsOutput(slot, tls);
  }
  return error;
}

void CloseTlsAfterOutput(Slot* slot, TlsState& tls) {
  tls.close_due = true;
  EncryptQueuedPlaintext(slot, tls);  // closes once nothing is left
}

void ConnectionOutput::TlsWrite(Slot* slot, TlsState& tls,
                                absl::string_view data) {
  // What was written before this one first.
  if (EncryptQueuedPlaintext(slot, tls) != 0) return;
  {
    MutexLock lock(&slot->out_mu);
    if (slot->tls_plain != nullptr) {
      // Behind a file not read yet (or plaintext held back): queued as it
      // is, encrypted after it.
      slot->tls_plain->Append(data);
      slot->out_bytes.store(QueuedBytes(slot), std::memory_order_release);
      slot->owner.drained_due = true;
      return;
    }
  }
  if (!tls.session->Write(data).ok()) return;  // closing or failed
  QueueTlsOutput(slot, tls);
}

void ConnectionOutput::TlsSendFile(Slot* slot, ScopedFd file, int64_t offset,
                                   int64_t length) {
  // sendfile(2) cannot encrypt: the range waits behind what was written
  // before it, and the flush reads and encrypts it a few records at a time
  // as the socket takes them (EncryptQueuedPlaintext).
  MutexLock lock(&slot->out_mu);
  if (slot->tls_plain == nullptr) {
    slot->tls_plain = std::make_unique<OutputQueue>();
  }
  slot->tls_plain->AppendFile(std::move(file), offset, length);
  slot->out_bytes.store(QueuedBytes(slot), std::memory_order_release);
  slot->owner.drained_due = true;
}

}  // namespace baton::internal
