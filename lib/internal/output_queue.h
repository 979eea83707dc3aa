// Internal header: OutputQueue, the bytes and file ranges waiting to be sent
// on one connection.
#ifndef BATON_INTERNAL_OUTPUT_QUEUE_H_
#define BATON_INTERNAL_OUTPUT_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "lib/internal/scoped_fd.h"

namespace baton::internal {

// An ordered queue of byte chunks and file ranges. Not thread-safe: the
// connection's out_mu guards it.
class OutputQueue {
 public:
  enum class FlushResult {
    kDrained,  // everything was sent
    kBlocked,  // the socket buffer is full; wait for EPOLLOUT
    kError,    // the connection failed; `*error` holds errno
  };

  void Append(absl::string_view data);
  // Appends `n` bytes the caller writes at the returned address (valid
  // until the next call on the queue), so a producer with its own buffer
  // (a TLS engine's ciphertext) copies once; TrimBack(k) then gives back
  // the last k of them if fewer were written.
  char* AppendSpace(size_t n);
  void TrimBack(size_t k);
  // Takes ownership of `file` and queues `length` bytes from `offset`.
  void AppendFile(ScopedFd file, int64_t offset, int64_t length);

  bool empty() const { return head_ == chunks_.size(); }
  size_t bytes() const { return bytes_; }

  // Sends as much as the socket takes: writev over consecutive byte chunks,
  // sendfile for file ranges. Adds the bytes sent to `*sent`.
  FlushResult Flush(int socket_fd, size_t* sent, int* error);

  // For a queue of plaintext (a TLS connection's Slot::tls_plain, which
  // the owner encrypts): whether the front is a file range, and taking the
  // front's bytes: all of a byte chunk, or up to `max` bytes of a file
  // range, read with pread(2), appended to `*out`. Returns the bytes taken;
  // 0 if empty, or with `*error` set when the file could not be read (EIO:
  // it is shorter than the range queued).
  bool front_is_file() { return !empty() && front().is_file(); }
  size_t TakeFront(size_t max, std::string* out, int* error);

  // Drops everything queued, keeping small buffers (the chunk array, one
  // sent chunk's bytes) so a recycled queue's next Append allocates nothing.
  void Clear();

 private:
  struct Chunk {
    std::string data;  // byte chunk, sent from `offset`
    size_t offset = 0;
    ScopedFd file;  // file chunk when valid
    int64_t file_offset = 0;
    int64_t file_remaining = 0;

    bool is_file() const { return file.valid(); }
  };

  FlushResult FlushBytes(int socket_fd, size_t* sent, int* error);
  FlushResult FlushFile(int socket_fd, size_t* sent, int* error);
  Chunk& front() { return chunks_[head_]; }
  // Removes the front chunk, keeping its buffer as spare_ when small.
  void PopFront();

  // The queued chunks are chunks_[head_..]: popping the front moves head_,
  // and the array is reused once empty, so a queue that sends what it was
  // given allocates nothing in the steady state.
  std::vector<Chunk> chunks_;
  size_t head_ = 0;
  size_t bytes_ = 0;
  // The emptied buffer of a sent byte chunk, reused by the next new chunk:
  // a message relayed through Reactor::Write costs no allocation.
  std::string spare_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_OUTPUT_QUEUE_H_
