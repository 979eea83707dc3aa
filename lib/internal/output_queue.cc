// Internal: OutputQueue.
#include "lib/internal/output_queue.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace baton::internal {
namespace {

// Small writes are coalesced into the tail chunk up to this size, so a burst
// of tiny writes becomes one iovec instead of many.
constexpr size_t kCoalesceLimit = 16 << 10;
constexpr int kMaxIov = 64;
// One sendfile call moves at most this much, so one connection streaming a
// large file does not monopolise its thread.
constexpr size_t kSendfileChunk = 1 << 20;
// A sent chunk's buffer up to this capacity is kept for the next one.
constexpr size_t kSpareCapacity = kCoalesceLimit;
// Popped chunks are compacted away once this many lead the array (and at
// least half of it), so a long backlog costs amortised O(1) per chunk.
constexpr size_t kCompactAfter = 64;
// Clear keeps a chunk array up to this capacity.
constexpr size_t kKeptChunkCapacity = 16;

}  // namespace

void OutputQueue::Append(absl::string_view data) {
  if (data.empty()) return;
  bytes_ += data.size();
  if (!empty() && !chunks_.back().is_file() &&
      chunks_.back().data.size() - chunks_.back().offset + data.size() <=
          kCoalesceLimit) {
    chunks_.back().data.append(data.data(), data.size());
    return;
  }
  Chunk chunk;
  chunk.data.swap(spare_);  // empty, but keeps the capacity it had
  chunk.data.assign(data.data(), data.size());
  chunks_.push_back(std::move(chunk));
}

char* OutputQueue::AppendSpace(size_t n) {
  if (n == 0) return nullptr;
  bytes_ += n;
  if (empty() || chunks_.back().is_file() ||
      chunks_.back().data.size() - chunks_.back().offset + n > kCoalesceLimit) {
    Chunk chunk;
    chunk.data.swap(spare_);  // empty, but keeps the capacity it had
    chunks_.push_back(std::move(chunk));
  }
  std::string& tail = chunks_.back().data;
  const size_t at = tail.size();
  tail.resize(at + n);
  return &tail[at];
}

void OutputQueue::TrimBack(size_t k) {
  if (k == 0 || empty()) return;
  Chunk& back = chunks_.back();
  k = std::min(k, back.data.size() - back.offset);
  back.data.resize(back.data.size() - k);
  bytes_ -= k;
  if (back.data.size() == back.offset) {  // nothing of it left: no chunk
    chunks_.pop_back();
    if (head_ == chunks_.size()) {
      chunks_.clear();
      head_ = 0;
    }
  }
}

void OutputQueue::PopFront() {
  Chunk& chunk = front();
  if (!chunk.is_file() && chunk.data.capacity() <= kSpareCapacity &&
      chunk.data.capacity() > spare_.capacity()) {
    chunk.data.clear();
    spare_.swap(chunk.data);
  }
  chunk = Chunk();  // frees its bytes, closes its file
  ++head_;
  if (head_ == chunks_.size()) {
    chunks_.clear();  // keeps the capacity
    head_ = 0;
  } else if (head_ >= kCompactAfter && 2 * head_ >= chunks_.size()) {
    chunks_.erase(chunks_.begin(),
                  chunks_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

void OutputQueue::Clear() {
  while (!empty()) PopFront();
  bytes_ = 0;
  if (chunks_.capacity() > kKeptChunkCapacity) {
    std::vector<Chunk>().swap(chunks_);
  }
}

void OutputQueue::AppendFile(ScopedFd file, int64_t offset, int64_t length) {
  if (length <= 0) return;
  bytes_ += static_cast<size_t>(length);
  Chunk chunk;
  chunk.file = std::move(file);
  chunk.file_offset = offset;
  chunk.file_remaining = length;
  chunks_.push_back(std::move(chunk));
}

OutputQueue::FlushResult OutputQueue::Flush(int socket_fd, size_t* sent,
                                            int* error) {
  while (!empty()) {
    const FlushResult result = front().is_file()
                                   ? FlushFile(socket_fd, sent, error)
                                   : FlushBytes(socket_fd, sent, error);
    if (result != FlushResult::kDrained) return result;
  }
  return FlushResult::kDrained;
}

// Sends the leading run of byte chunks; kDrained means that run is gone.
OutputQueue::FlushResult OutputQueue::FlushBytes(int socket_fd, size_t* sent,
                                                 int* error) {
  for (;;) {
    iovec iov[kMaxIov];
    int count = 0;
    size_t want = 0;
    for (auto it = chunks_.begin() + static_cast<ptrdiff_t>(head_);
         it != chunks_.end() && !it->is_file() && count < kMaxIov; ++it) {
      iov[count].iov_base = it->data.data() + it->offset;
      iov[count].iov_len = it->data.size() - it->offset;
      want += iov[count].iov_len;
      ++count;
    }
    if (count == 0) return FlushResult::kDrained;
    msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::kBlocked;
      *error = errno;
      return FlushResult::kError;
    }
    *sent += static_cast<size_t>(n);
    bytes_ -= static_cast<size_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      Chunk& chunk = front();
      const size_t avail = chunk.data.size() - chunk.offset;
      if (left < avail) {
        chunk.offset += left;
        break;
      }
      left -= avail;
      PopFront();
    }
    if (static_cast<size_t>(n) < want) return FlushResult::kBlocked;
  }
}

OutputQueue::FlushResult OutputQueue::FlushFile(int socket_fd, size_t* sent,
                                                int* error) {
  Chunk& chunk = front();
  while (chunk.file_remaining > 0) {
    off_t offset = chunk.file_offset;
    const size_t want = static_cast<size_t>(
        std::min<int64_t>(chunk.file_remaining, kSendfileChunk));
    const ssize_t n = ::sendfile(socket_fd, chunk.file.get(), &offset, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return FlushResult::kBlocked;
      *error = errno;
      return FlushResult::kError;
    }
    if (n == 0) {
      // The file shrank under us: the promised length can no longer be
      // honoured, so the stream is broken.
      *error = EIO;
      return FlushResult::kError;
    }
    *sent += static_cast<size_t>(n);
    bytes_ -= static_cast<size_t>(n);
    chunk.file_offset += n;
    chunk.file_remaining -= n;
    if (static_cast<size_t>(n) < want) return FlushResult::kBlocked;
  }
  PopFront();
  return FlushResult::kDrained;
}

size_t OutputQueue::TakeFront(size_t max, std::string* out, int* error) {
  if (empty()) return 0;
  Chunk& chunk = front();
  size_t n;
  if (!chunk.is_file()) {
    n = chunk.data.size() - chunk.offset;
    out->append(chunk.data, chunk.offset, n);
    PopFront();
  } else {
    const size_t want = static_cast<size_t>(
        std::min<int64_t>(chunk.file_remaining, static_cast<int64_t>(max)));
    const size_t start = out->size();
    out->resize(start + want);
    ssize_t r;
    do {
      r = ::pread(chunk.file.get(), &(*out)[start], want, chunk.file_offset);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
      out->resize(start);
      // As sendfile(2) finding the file shorter: the stream is broken.
      *error = r == 0 ? EIO : errno;
      return 0;
    }
    n = static_cast<size_t>(r);
    out->resize(start + n);
    chunk.file_offset += r;
    chunk.file_remaining -= r;
    if (chunk.file_remaining == 0) PopFront();
  }
  bytes_ -= n;
  return n;
}

}  // namespace baton::internal
