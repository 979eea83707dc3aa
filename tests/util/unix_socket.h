// Test utility: Unix socket paths short enough for sun_path, and blocking
// Unix socket clients with timeouts.
#ifndef BATON_TESTS_UTIL_UNIX_SOCKET_H_
#define BATON_TESTS_UTIL_UNIX_SOCKET_H_

#include <string>

namespace baton::testing {

// A private directory for socket files, removed with its contents on
// destruction. Inside the test's TEST_TMPDIR when its path is short enough
// for sun_path (107 bytes), else a fresh mkdtemp directory under /tmp
// (Bazel's TEST_TMPDIR is usually too deep).
class UnixTempDir {
 public:
  UnixTempDir();
  ~UnixTempDir();
  UnixTempDir(const UnixTempDir&) = delete;
  UnixTempDir& operator=(const UnixTempDir&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }
  // dir() + "/" + name.
  std::string Path(const std::string& name) const;

 private:
  std::string dir_;
};

// An abstract-namespace name ("@...") unique to this process and `tag`.
std::string AbstractName(const std::string& tag);

// A blocking connection to the Unix socket `path` ('@' for an abstract
// name) whose connect, reads and writes give up after `timeout_ms`. -1 on
// failure, with errno set.
int ConnectUnix(const std::string& path, int timeout_ms = 10000);

// Binds a Unix socket to `path` and closes it without listening: leaves the
// socket file a crashed server would leave. False on failure.
bool MakeStaleSocketFile(const std::string& path);

}  // namespace baton::testing

#endif  // BATON_TESTS_UTIL_UNIX_SOCKET_H_
