// Internal header: Poller, the reactor's one epoll instance and the only
// place that calls epoll_ctl.
//
// Every registration is EPOLLONESHOT: a delivered event disarms its
// descriptor until the next Arm. Event data is a ConnectionId for
// connections, or kInternalTag plus a source number for the reactor's own
// descriptors (eventfd, timerfd, listeners).
#ifndef BATON_INTERNAL_POLLER_H_
#define BATON_INTERNAL_POLLER_H_

#include <sys/epoll.h>

#include <cstdint>

#include "lib/internal/scoped_fd.h"

namespace baton::internal {

// epoll data for the reactor's own sources: bit 63 set, low bits say which.
// (Connection ids keep bit 63 clear: see connection_table.h.)
constexpr uint64_t kInternalTag = uint64_t{1} << 63;
constexpr uint64_t kWakeSource = 0;
constexpr uint64_t kTimerSource = 1;
constexpr uint64_t kListenerSourceBase = 16;

class Poller {
 public:
  // Creates the epoll instance (close-on-exec); crashes if it cannot.
  Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Arms `fd` for one event with `interest` (EPOLLONESHOT is added) and
  // `data`: EPOLL_CTL_ADD when `add`, else EPOLL_CTL_MOD. Returns 0 or an
  // errno. EINTR is retried: Linux returns it from epoll_ctl only when a
  // fatal signal interrupts its lock wait, before anything changed.
  int Arm(int fd, bool add, uint32_t interest, uint64_t data);

  // Arms one of the reactor's own descriptors for EPOLLIN; crashes on
  // failure (it cannot fail for a valid descriptor).
  void ArmInternal(int fd, bool add, uint64_t source);

  // epoll_wait, retried on EINTR; `timeout_ms` < 0 waits forever. Returns
  // the number of events stored in `events`.
  int Wait(epoll_event* events, int max_events, int timeout_ms);

 private:
  ScopedFd epoll_;
};

}  // namespace baton::internal

#endif  // BATON_INTERNAL_POLLER_H_
