// Internal header: Unix domain socket listeners for the reactor (and the
// comparison servers): the socket file's life, from replacing a stale one
// left by a crashed run to removing ours when the listener shuts.
#ifndef BATON_INTERNAL_UNIX_LISTENER_H_
#define BATON_INTERNAL_UNIX_LISTENER_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/internal/scoped_fd.h"

namespace baton::internal {

// The socket file a Unix listener created. Remove() (and the destructor)
// unlinks it only if the path still names that file (same st_dev and
// st_ino), so a file another process has since put there is left alone.
// Empty (a no-op) for an abstract name, which has no file. Not thread-safe:
// the reactor calls it under its listeners' lock.
class UnixSocketFile {
 public:
  UnixSocketFile() = default;
  UnixSocketFile(std::string path, dev_t dev, ino_t ino)
      : path_(std::move(path)), dev_(dev), ino_(ino) {}
  ~UnixSocketFile() { Remove(); }
  UnixSocketFile(UnixSocketFile&& other) noexcept { *this = std::move(other); }
  UnixSocketFile& operator=(UnixSocketFile&& other) noexcept;
  UnixSocketFile(const UnixSocketFile&) = delete;
  UnixSocketFile& operator=(const UnixSocketFile&) = delete;

  // Idempotent.
  void Remove();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

struct UnixListener {
  ScopedFd fd;
  UnixSocketFile file;
};

// Creates a non-blocking, close-on-exec Unix stream listener on `path`
// (net::ParseUnixAddress: a file path, or '@' and an abstract name).
// `mode` >= 0 (0..07777) is applied to the socket file with chmod after
// bind and before listen, so no client connects before it holds; -1 leaves
// what bind made (0777 minus the umask). A mode for an abstract name is
// INVALID_ARGUMENT (it has no file and no permissions).
// An existing file at `path`:
//   * a socket nobody listens on (a probing connect is refused): a
//     leftover of a run that did not remove it; unlinked and replaced;
//   * a socket someone listens on: ALREADY_EXISTS, left alone;
//   * anything else (a regular file, a directory...): FAILED_PRECONDITION,
//     left alone.
// An abstract name in use is ALREADY_EXISTS.
absl::StatusOr<UnixListener> CreateUnixListener(absl::string_view path,
                                                int backlog, int mode);

}  // namespace baton::internal

#endif  // BATON_INTERNAL_UNIX_LISTENER_H_
