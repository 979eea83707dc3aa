// Internal: Poller.
#include "lib/internal/poller.h"

#include <glog/logging.h>

#include <cerrno>

namespace baton::internal {

Poller::Poller() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  PCHECK(epoll_.valid()) << "epoll_create1";
}

int Poller::Arm(int fd, bool add, uint32_t interest, uint64_t data) {
  epoll_event ev = {};
  ev.events = interest | EPOLLONESHOT;
  ev.data.u64 = data;
  const int op = add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  int r;
  do {
    r = ::epoll_ctl(epoll_.get(), op, fd, &ev);
  } while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

void Poller::ArmInternal(int fd, bool add, uint64_t source) {
  const int err = Arm(fd, add, EPOLLIN, kInternalTag | source);
  errno = err;
  PCHECK(err == 0) << "arming internal source " << source;
}

int Poller::Wait(epoll_event* events, int max_events, int timeout_ms) {
  int n;
  do {
    n = ::epoll_wait(epoll_.get(), events, max_events, timeout_ms);
  } while (n < 0 && errno == EINTR);
  PCHECK(n >= 0) << "epoll_wait";
  return n;
}

}  // namespace baton::internal
