// Test utility: Unix socket paths and clients.
#include "tests/util/unix_socket.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "lib/net/address.h"

namespace baton::testing {
namespace {

// Room left in sun_path for a socket name below the directory.
constexpr size_t kMaxDirLength = 80;

}  // namespace

UnixTempDir::UnixTempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp != nullptr) {
    std::string dir = absl::StrCat(tmp, "/unix-XXXXXX");
    if (dir.size() <= kMaxDirLength && ::mkdtemp(dir.data()) != nullptr) {
      dir_ = dir;
      return;
    }
  }
  std::string dir = "/tmp/baton-unix-XXXXXX";
  if (::mkdtemp(dir.data()) != nullptr) dir_ = dir;
}

UnixTempDir::~UnixTempDir() {
  if (dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string UnixTempDir::Path(const std::string& name) const {
  return absl::StrCat(dir_, "/", name);
}

std::string AbstractName(const std::string& tag) {
  return absl::StrCat("@baton-test-", ::getpid(), "-", tag);
}

int ConnectUnix(const std::string& path, int timeout_ms) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = net::ParseUnixAddress(path, &addr);
  if (!len.ok()) {
    errno = EINVAL;
    return -1;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // Also bounds a connect that waits for room in a full backlog.
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), *len) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool MakeStaleSocketFile(const std::string& path) {
  sockaddr_storage addr;
  absl::StatusOr<socklen_t> len = net::ParseUnixAddress(path, &addr);
  if (!len.ok()) return false;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), *len) == 0;
  ::close(fd);
  return bound;
}

}  // namespace baton::testing
