// Internal: Unix domain socket listeners.
#include "lib/internal/unix_listener.h"

#include <glog/logging.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/net/address.h"
#include "lib/net/errno_status.h"

namespace baton::internal {
namespace {

// What is at `path` before we bind: OK if nothing is (any more), after
// unlinking a stale socket file.
absl::Status ClearStaleSocketFile(const std::string& path,
                                  const sockaddr_storage& addr, socklen_t len) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return net::ErrnoStatus(absl::StrCat("stat ", path), errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on ", net::UnixAddressString(path),
        ": the path exists and is not a socket (not replacing it)"));
  }
  ScopedFd probe(
      ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return net::ErrnoStatus("socket", errno);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), len) ==
          0 ||
      errno == EAGAIN) {
    // Accepted, or its backlog is full: someone is listening.
    return absl::AlreadyExistsError(
        absl::StrCat("cannot listen on ", net::UnixAddressString(path),
                     ": another socket is listening there"));
  }
  if (errno != ECONNREFUSED) {
    return net::ErrnoStatus(
        absl::StrCat("probe ", net::UnixAddressString(path)), errno);
  }
  LOG(INFO) << "replacing stale socket file " << path
            << " (nobody listens on it)";
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return net::ErrnoStatus(absl::StrCat("unlink stale ", path), errno);
  }
  return absl::OkStatus();
}

}  // namespace

UnixSocketFile& UnixSocketFile::operator=(UnixSocketFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    dev_ = other.dev_;
    ino_ = other.ino_;
    other.path_.clear();
  }
  return *this;
}

void UnixSocketFile::Remove() {
  if (path_.empty()) return;
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ &&
      st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
  path_.clear();
}

absl::StatusOr<UnixListener> CreateUnixListener(absl::string_view path,
                                                int backlog, int mode) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = net::ParseUnixAddress(path, &addr);
  if (!len.ok()) return len.status();
  const bool abstract = path.front() == '@';
  if (mode < -1 || mode > 07777) {
    return absl::InvalidArgumentError("unix_mode must be -1 or 0..07777");
  }
  if (abstract && mode != -1) {
    return absl::InvalidArgumentError(
        "unix_mode: an abstract socket name has no file to chmod");
  }
  const std::string text(path);
  if (!abstract) {
    if (absl::Status s = ClearStaleSocketFile(text, addr, *len); !s.ok()) {
      return s;
    }
  }
  UnixListener listener;
  listener.fd.Reset(
      ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.fd.valid()) return net::ErrnoStatus("socket", errno);
  if (::bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&addr), *len) !=
      0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(absl::StrCat("cannot listen on ",
                                                   net::UnixAddressString(text),
                                                   ": address in use"));
    }
    return net::ErrnoStatus(absl::StrCat("bind ", net::UnixAddressString(text)),
                            errno);
  }
  if (!abstract) {
    struct stat st;
    if (::lstat(text.c_str(), &st) != 0) {
      return net::ErrnoStatus(absl::StrCat("stat ", text), errno);
    }
    // From here on every error path removes the file again.
    listener.file = UnixSocketFile(text, st.st_dev, st.st_ino);
    if (mode >= 0 && ::chmod(text.c_str(), static_cast<mode_t>(mode)) != 0) {
      return net::ErrnoStatus(absl::StrCat("chmod ", text), errno);
    }
  }
  if (::listen(listener.fd.get(), backlog) != 0) {
    return net::ErrnoStatus("listen", errno);
  }
  return listener;
}

}  // namespace baton::internal
