// Internal (comparison servers): scaffolding for the classic comparison
// servers.
#include "server/compare/baseline_listener.h"

#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "lib/internal/socket_util.h"
#include "lib/net/address.h"
#include "lib/net/endpoint.h"
#include "lib/net/socket_options.h"
#include "server/flags.h"

namespace baton::baseline {

std::atomic<bool> g_stopping{false};

int StartListening(int* argc, char*** argv, const char* usage,
                   bool nonblocking) {
  if (!flags::InitServer(argc, argv, usage)) return -1;
  if (net::IsUnixEndpoint(FLAGS_address)) {
    LOG(ERROR) << "--address=" << FLAGS_address
               << ": this server listens on TCP only";
    return -1;
  }
  const sigset_t signals = flags::BlockStopSignals();
  absl::StatusOr<internal::ScopedFd> fd =
      internal::CreateListener(FLAGS_address, FLAGS_port, 1024, false);
  if (!fd.ok()) {
    LOG(ERROR) << "cannot listen on "
               << net::JoinHostPort(FLAGS_address, FLAGS_port) << ": "
               << fd.status().message();
    return -1;
  }
  if (!nonblocking) {
    const int flags = ::fcntl(fd->get(), F_GETFL);
    ::fcntl(fd->get(), F_SETFL, flags & ~O_NONBLOCK);
  }
  LOG(INFO) << "listening on " << internal::LocalAddressString(fd->get());
  std::thread([signals] {
    const int signal = flags::WaitForSignal(signals);
    LOG(INFO) << "signal " << signal << ": stopping";
    g_stopping = true;
  }).detach();
  return fd->Release();
}

int AcceptOne(int listen_fd, bool nonblocking) {
  const int fd = ::accept4(listen_fd, nullptr, nullptr,
                           SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
  if (fd >= 0) {
    net::SetNoDelay(fd);
  } else if (errno == EMFILE || errno == ENFILE) {
    LOG_EVERY_N(WARNING, 1000) << "accept: out of descriptors";
    ::usleep(10000);
  }
  return fd;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p = {fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
      if (g_stopping) return false;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace baton::baseline
