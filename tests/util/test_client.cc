// Test utility implementation: loopback clients and child servers.
#include "tests/util/test_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace baton::testing {

int ConnectLoopback(int port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv;
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string Pattern(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x + i);
  }
  return out;
}

absl::Status SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat(
          "send failed after ", off, " bytes: ", std::strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadExact(int fd, size_t size) {
  std::string out(size, '\0');
  size_t off = 0;
  while (off < size) {
    const ssize_t n = ::recv(fd, &out[off], size - off, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("recv failed after ", off, " of ", size,
                       " bytes: ", std::strerror(errno)));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("EOF after ", off, " of ", size, " bytes"));
    }
    off += static_cast<size_t>(n);
  }
  return out;
}

absl::StatusOr<std::string> ReadToEof(int fd, size_t limit) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrCat(
          "recv failed after ", out.size(), " bytes: ", std::strerror(errno)));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) return absl::OutOfRangeError("too much data");
  }
}

const char* EndName(End end) {
  switch (end) {
    case End::kEof:
      return "EOF";
    case End::kReset:
      return "reset";
    case End::kData:
      return "data";
    case End::kTimeout:
      return "timeout";
    case End::kError:
      return "error";
  }
  return "?";
}

End WaitForEnd(int fd, int bound_ms) {
  pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, bound_ms);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return End::kTimeout;
  char c;
  const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
  if (n == 0) return End::kEof;
  if (n > 0) return End::kData;
  return errno == ECONNRESET ? End::kReset : End::kError;
}

absl::Status EchoRoundTrip(int fd, const std::string& payload) {
  absl::Status send_status;
  std::thread writer([&] { send_status = SendAll(fd, payload); });
  absl::StatusOr<std::string> got = ReadExact(fd, payload.size());
  writer.join();
  if (!send_status.ok()) return send_status;
  if (!got.ok()) return got.status();
  if (*got != payload) {
    size_t i = 0;
    while (i < payload.size() && (*got)[i] == payload[i]) ++i;
    return absl::DataLossError(
        absl::StrCat("echo differs at byte ", i, " of ", payload.size()));
  }
  return absl::OkStatus();
}

std::string RunfilePath(const std::string& workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return workspace_relative;
  return absl::StrCat(srcdir, "/", workspace ? workspace : "baton", "/",
                      workspace_relative);
}

ChildServer::~ChildServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
}

absl::Status ChildServer::Start(const std::string& binary,
                                const std::vector<std::string>& args,
                                const std::string& ready) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2");
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) return absl::InternalError("fork");
  if (pid_ == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execv(binary.c_str(), argv.data());
    _exit(127);
  }
  ::close(pipe_fds[1]);
  stderr_fd_ = pipe_fds[0];
  const std::regex listening(ready);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    DrainOutput(100);
    std::smatch m;
    if (std::regex_search(output_, m, listening)) {
      port_ = std::stoi(m[1]);
      return absl::OkStatus();
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      DrainOutput(100);
      return absl::InternalError("server exited early: " + output_);
    }
  }
  return absl::DeadlineExceededError("no listening line: " + output_);
}

void ChildServer::DrainOutput(int timeout_ms) {
  pollfd p = {stderr_fd_, POLLIN, 0};
  while (::poll(&p, 1, timeout_ms) > 0) {
    char buf[4096];
    const ssize_t n = ::read(stderr_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    output_.append(buf, static_cast<size_t>(n));
    timeout_ms = 0;
  }
}

absl::StatusOr<int> ChildServer::StopWith(int signal, int timeout_ms) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  ::kill(pid_, signal);
  return WaitExit(timeout_ms);
}

absl::StatusOr<int> ChildServer::WaitExit(int timeout_ms) {
  if (pid_ <= 0) {
    if (exit_status_ >= 0) return exit_status_;
    return absl::FailedPreconditionError("never started");
  }
  // A wall-clock deadline: once the child closes its stderr, DrainOutput
  // returns at once, so counting iterations would not measure time.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  do {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      DrainOutput(100);
      return status;
    }
    DrainOutput(20);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < deadline);
  return absl::DeadlineExceededError("server did not exit in time");
}

}  // namespace baton::testing
