// //server/compare:poll_echo — a single-threaded poll() echo server, the
// classic baseline: every call hands the kernel the whole descriptor array, so
// its cost grows with the number of connections, busy or idle.
#include <glog/logging.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "server/compare/baseline_listener.h"
#include "server/compare/slow_rule_flags.h"

namespace {

// Echoes what arrives; a peer that does not read its replies is not read
// from (POLLIN dropped) while more than this is queued for it.
constexpr size_t kMaxPending = 1 << 20;

struct Client {
  std::string pending;  // reply bytes not yet sent
};

}  // namespace

int main(int argc, char** argv) {
  const int listen_fd = baton::baseline::StartListening(
      &argc, &argv, "single-threaded poll() echo server (comparison baseline)",
      /*nonblocking=*/true);
  if (listen_fd < 0) return 1;
  const baton::SlowRule& slow = baton::SlowRuleFromFlags();
  baton::ActiveSlowRule();  // logs the rule if on
  std::vector<pollfd> fds = {{listen_fd, POLLIN, 0}};
  std::vector<Client> clients(1);
  char buf[65536];
  while (!baton::baseline::g_stopping) {
    for (size_t i = 1; i < fds.size(); ++i) {
      fds[i].events = (clients[i].pending.size() < kMaxPending ? POLLIN : 0) |
                      (clients[i].pending.empty() ? 0 : POLLOUT);
    }
    const int n = ::poll(fds.data(), fds.size(), 100);
    if (n <= 0) continue;
    for (size_t i = 1; i < fds.size(); ++i) {
      const short re = fds[i].revents;
      if (re == 0) continue;
      bool close_it = (re & (POLLERR | POLLNVAL)) != 0;
      if (!close_it && (re & (POLLIN | POLLHUP))) {
        const ssize_t r = ::read(fds[i].fd, buf, sizeof(buf));
        if (r > 0) {
          slow.Apply({buf, static_cast<size_t>(r)});
          clients[i].pending.append(buf, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close_it = clients[i].pending.empty() || r < 0;
          if (!close_it) fds[i].events = POLLOUT;  // flush, then close
        }
      }
      if (!close_it && !clients[i].pending.empty()) {
        const ssize_t w =
            ::send(fds[i].fd, clients[i].pending.data(),
                   clients[i].pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          clients[i].pending.erase(0, static_cast<size_t>(w));
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          close_it = true;
        }
      }
      if (close_it) {
        ::close(fds[i].fd);
        fds[i] = fds.back();
        fds.pop_back();
        clients[i] = std::move(clients.back());
        clients.pop_back();
        --i;  // look at the entry moved into this place
      }
    }
    if (fds[0].revents & POLLIN) {
      for (int k = 0; k < 64; ++k) {
        const int fd = baton::baseline::AcceptOne(listen_fd, true);
        if (fd < 0) break;
        fds.push_back({fd, POLLIN, 0});
        clients.emplace_back();
      }
    }
  }
  for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
  ::close(listen_fd);
  if (slow.enabled()) LOG(INFO) << slow.Summary();
  LOG(INFO) << "stopped";
  return 0;
}
