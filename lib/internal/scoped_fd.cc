// Internal: ScopedFd.
#include "lib/internal/scoped_fd.h"

#include <unistd.h>

namespace baton::internal {

void ScopedFd::Reset(int fd) {
  if (fd_ >= 0) {
    // Linux releases the descriptor even when close() reports EINTR, so it
    // must not be retried.
    ::close(fd_);
  }
  fd_ = fd;
}

}  // namespace baton::internal
