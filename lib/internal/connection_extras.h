// Internal header: OwnerExtras, the owner-only state a connection needs only
// when it uses retention, per-connection timers or an outbound connect.
// Allocated on first use and freed at teardown, so plain connections (and
// the echo hot path) never touch it.
#ifndef BATON_INTERNAL_CONNECTION_EXTRAS_H_
#define BATON_INTERNAL_CONNECTION_EXTRAS_H_

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "baton/tls.h"
#include "lib/internal/connection_state.h"
#include "lib/internal/resolver.h"
#include "lib/tls/tls_session.h"

namespace baton {
class Connection;
}  // namespace baton

namespace baton::internal {

// Retained input: bytes [start, start + size) of one heap block, with room
// behind them for the next read. Not zero-filled, so reading into the tail
// costs no memset; consuming from the front only moves `start`.
class InputBuffer {
 public:
  InputBuffer() = default;
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;
  ~InputBuffer() { Release(); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  const char* data() const { return block_.get() + start_; }

  // Room for `n` more bytes behind the held ones; returns where they go.
  // Moves the held bytes (compaction or growth) only when the tail is short.
  // A new block is twice the old one, so a message assembled over many
  // reads is moved a bounded number of times per byte, but no larger than
  // `limit` unless the held bytes and `n` need more.
  char* Reserve(size_t n, size_t limit = SIZE_MAX) {
    if (capacity_ - start_ - size_ < n) {
      size_t grown = std::max(capacity_ * 2, size_ + n);
      grown = std::min(grown, std::max(limit, size_ + n));
      if (capacity_ - size_ >= n &&
          (size_ * 2 <= capacity_ || grown <= capacity_)) {
        std::memmove(block_.get(), data(), size_);
      } else {
        MoveTo(grown);
      }
      start_ = 0;
    }
    return block_.get() + start_ + size_;
  }
  // `n` bytes were written where Reserve pointed.
  void Commit(size_t n) { size_ += n; }
  // Drops `n` bytes from the front.
  void Consume(size_t n) {
    start_ += n;
    size_ -= n;
    if (size_ == 0) start_ = 0;
  }
  // Moves the held bytes into a block of exactly their size (none if
  // empty) when the current one is more than twice that: a short tail kept
  // after a read must not pin the whole block the read went to.
  void ShrinkToFit() {
    if (capacity_ <= 2 * size_) return;
    if (size_ == 0) {
      Release();
      return;
    }
    MoveTo(size_);
    start_ = 0;
  }
  void Release() {
    allocated_.fetch_sub(capacity_, std::memory_order_relaxed);
    block_.reset();
    start_ = size_ = capacity_ = 0;
  }

  // Bytes in every InputBuffer's block in this process (all reactors): what
  // retained input costs in memory. For tests and diagnostics.
  static size_t allocated() {
    return allocated_.load(std::memory_order_relaxed);
  }

 private:
  // A new block of `capacity` bytes holding the held ones at its start
  // (start_ is the caller's to reset).
  void MoveTo(size_t capacity) {
    std::unique_ptr<char[]> block(new char[capacity]);
    if (size_ > 0) std::memcpy(block.get(), data(), size_);
    allocated_.fetch_add(capacity, std::memory_order_relaxed);
    allocated_.fetch_sub(capacity_, std::memory_order_relaxed);
    block_ = std::move(block);
    capacity_ = capacity;
  }

  static std::atomic<size_t> allocated_;
  std::unique_ptr<char[]> block_;
  size_t start_ = 0;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// One Connection::RunAfter timer: a TimerQueue entry (whose callback only
// raises kTimerDue on the connection) plus what to run under the claim.
struct ConnectionTimer {
  uint64_t id = 0;          // the TimerQueue id, also the public TimerId
  int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
  std::function<void(Connection&)> fn;
};

// An outbound connection while it is kConnecting (Reactor::Connect).
struct ConnectState {
  sockaddr_storage address = {};
  socklen_t address_length = 0;
  std::string peer;        // "HOST:PORT", for statuses and logs
  int64_t timeout_ns = 0;  // per attempt
  int max_attempts = 1;
  int64_t initial_backoff_ns = 0;
  int64_t max_backoff_ns = 0;
  int attempt = 0;  // attempts started so far
  // The attempt's timeout while a socket exists (fd >= 0), else the end of
  // the back-off before the next attempt; `timer` fires kTimerDue then.
  int64_t deadline_ns = 0;
  uint64_t timer = 0;

  // A host name (address holds the current one of `addresses`); empty for
  // a literal, which takes none of the rest.
  std::string host;
  int port = 0;
  int64_t resolve_timeout_ns = 0;
  // Set while the name is being looked up (deadline_ns is the lookup's).
  std::unique_ptr<PendingLookup> lookup;
  std::vector<ResolvedAddress> addresses;
  size_t next_address = 0;          // the one tried now within an attempt
  std::vector<std::string> errors;  // this attempt's, one per address

  // ConnectOptions::tls: the handshake starts once connected.
  std::shared_ptr<const tls::TlsContext> tls;
};

// A TLS connection's engine (a TLS listener's or a TLS Connect's
// connection, or one upgraded by Connection::StartTls).
struct TlsState {
  std::unique_ptr<tls::TlsSession> session;
  // The handshake deadline (CLOCK_MONOTONIC) and its timer, which raises
  // kTimerDue; 0 when there is none (no limit, or the handshake is done).
  int64_t handshake_deadline_ns = 0;
  uint64_t handshake_timer = 0;
  // Reading stopped (paused, high-water mark, the handler closed) before
  // the engine said it had no more plaintext: the socket will not signal
  // for what it holds, so it is read before waiting on the socket.
  bool plaintext_left = false;
  // Reactor::Connect's: a failed handshake owes OnClose (a failed connect).
  bool outbound = false;
  // Connection::StartTls on an open connection: its handshake runs in
  // kOpen and ends in OnTlsReady (not OnOpen); a failure owes OnClose.
  bool upgrading = false;
  // StartTls was called inside OnData: when that call returns, Deliver
  // feeds the last `upgrade_input` bytes of its data (what the handler had
  // retained at the call) to the session instead of keeping them.
  bool feed_after_ondata = false;
  size_t upgrade_input = 0;
  // What the handshake settled (Connection::tls), set when it completes.
  TlsPeer peer;
  // Close or ShutdownWrite came while plaintext was queued: close_notify
  // follows once it is all encrypted (CloseTlsAfterOutput).
  bool close_due = false;
  // One block of a file being sent (SendFile), read before it is
  // encrypted; freed once no file is queued.
  std::string file_block;
};

struct OwnerExtras {
  // Input the handler retained (Connection::Retain), handed back ahead of
  // new bytes; while non-empty, reads append to it directly.
  InputBuffer input;
  std::vector<ConnectionTimer> timers;
  std::unique_ptr<ConnectState> connect;
  std::unique_ptr<TlsState> tls;

  bool empty() const {
    return input.empty() && timers.empty() && !connect && !tls;
  }
};

// The slot's extras, allocated on first use.
inline OwnerExtras& ExtrasOf(OwnerState& owner) {
  if (!owner.extras) owner.extras.reset(new OwnerExtras);
  return *owner.extras;
}

}  // namespace baton::internal

#endif  // BATON_INTERNAL_CONNECTION_EXTRAS_H_
