// Internal header: OutputQueue, the bytes and file ranges waiting to be sent
// on one connection.
#ifndef BATON_INTERNAL_OUTPUT_QUEUE_H_
#define BATON_INTERNAL_OUTPUT_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

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
  // Takes ownership of `file` and queues `length` bytes from `offset`.
  void AppendFile(ScopedFd file, int64_t offset, int64_t length);

  bool empty() const { return chunks_.empty(); }
  size_t bytes() const { return bytes_; }

  // Sends as much as the socket takes: writev over consecutive byte chunks,
  // sendfile for file ranges. Adds the bytes sent to `*sent`.
  FlushResult Flush(int socket_fd, size_t* sent, int* error);

 private:
  struct Chunk {
    std::string data;       // byte chunk, sent from `offset`
    size_t offset = 0;
    ScopedFd file;          // file chunk when valid
    int64_t file_offset = 0;
    int64_t file_remaining = 0;

    bool is_file() const { return file.valid(); }
  };

  FlushResult FlushBytes(int socket_fd, size_t* sent, int* error);
  FlushResult FlushFile(int socket_fd, size_t* sent, int* error);

  std::deque<Chunk> chunks_;
  size_t bytes_ = 0;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_OUTPUT_QUEUE_H_
