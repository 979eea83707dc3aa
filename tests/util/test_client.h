// Test utility: blocking loopback clients with timeouts, payload patterns and
// a child-process server launcher. Everything stays on 127.0.0.1.
#ifndef BATON_TESTS_UTIL_TEST_CLIENT_H_
#define BATON_TESTS_UTIL_TEST_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace baton::testing {

// A one-shot event, like absl::Notification but built on std::mutex so that
// ThreadSanitizer sees it (Debian's libabsl is not instrumented).
class Notification {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return notified_; });
  }
  bool HasBeenNotified() {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A blocking TCP connection to 127.0.0.1:`port` whose reads and writes give
// up after `timeout_ms` (so a test never hangs). -1 on failure.
int ConnectLoopback(int port, int timeout_ms = 10000);

// Deterministic, position-dependent bytes: a dropped, duplicated, reordered
// or flipped byte changes the comparison.
std::string Pattern(size_t size, uint32_t seed);

absl::Status SendAll(int fd, const std::string& data);
// Reads exactly `size` bytes (error on EOF or timeout first).
absl::StatusOr<std::string> ReadExact(int fd, size_t size);
// Reads until EOF (error on timeout or reset).
absl::StatusOr<std::string> ReadToEof(int fd, size_t limit = 1 << 30);

// How the peer ended a connection. WaitForEnd polls for at most `bound_ms`
// (meant to be generous: only a hang reaches it), then looks at one byte.
enum class End { kEof, kReset, kData, kTimeout, kError };
const char* EndName(End end);
End WaitForEnd(int fd, int bound_ms = 10000);
inline bool EofOrReset(End end) {
  return end == End::kEof || end == End::kReset;
}

// Sends `payload` from a second thread while reading the echo on this one,
// so payloads larger than the socket buffers cannot deadlock. Returns an
// error unless exactly `payload` came back.
absl::Status EchoRoundTrip(int fd, const std::string& payload);

// A server binary run as a child process with its stderr captured; the
// "listening on ADDR:PORT" line gives the port.
class ChildServer {
 public:
  ChildServer() = default;
  ~ChildServer();  // SIGKILLs the child if still running
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  // Starts `binary` with `args` (stdout and stderr captured together) and
  // waits up to 20 s for output matching `ready`, whose first group is
  // kept as port() — by default the "listening on ADDR:PORT" line.
  absl::Status Start(const std::string& binary,
                     const std::vector<std::string>& args,
                     const std::string& ready = "listening on [^ ]*:([0-9]+)");
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `signal` and waits up to `timeout_ms` for exit; returns the wait
  // status, or an error on timeout.
  absl::StatusOr<int> StopWith(int signal, int timeout_ms);
  // Waits for the child to exit by itself; returns the wait status.
  absl::StatusOr<int> WaitExit(int timeout_ms);
  const std::string& output() const { return output_; }

 private:
  void DrainOutput(int timeout_ms);

  pid_t pid_ = -1;
  int exit_status_ = -1;
  int stderr_fd_ = -1;
  int port_ = -1;
  std::string output_;
};

// Path of a binary of this workspace in the test's runfiles, e.g.
// RunfilePath("server/echo").
std::string RunfilePath(const std::string& workspace_relative);

}  // namespace baton::testing

#endif  // BATON_TESTS_UTIL_TEST_CLIENT_H_
