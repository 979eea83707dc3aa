// //server/compare:select_echo — a single-threaded select() echo server, the
// oldest baseline. select() cannot watch descriptors >= FD_SETSIZE (1024): such
// connections are refused with a message instead of corrupting memory.
#include <glog/logging.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>

#include "server/compare/baseline_listener.h"
#include "server/compare/slow_rule_flags.h"

int main(int argc, char** argv) {
  const int listen_fd = baton::baseline::StartListening(
      &argc, &argv,
      "single-threaded select() echo server (comparison baseline; at most "
      "FD_SETSIZE descriptors)",
      /*nonblocking=*/true);
  if (listen_fd < 0) return 1;
  if (listen_fd >= FD_SETSIZE) {
    LOG(ERROR) << "listening descriptor " << listen_fd
               << " is beyond FD_SETSIZE";
    return 1;
  }
  const baton::SlowRule& slow = baton::SlowRuleFromFlags();
  baton::ActiveSlowRule();  // logs the rule if on
  constexpr size_t kMaxPending = 1 << 20;
  std::map<int, std::string> clients;  // fd -> reply bytes not yet sent
  char buf[65536];
  long refused = 0;
  while (!baton::baseline::g_stopping) {
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_SET(listen_fd, &readable);
    int max_fd = listen_fd;
    for (const auto& [fd, pending] : clients) {
      if (pending.size() < kMaxPending) FD_SET(fd, &readable);
      if (!pending.empty()) FD_SET(fd, &writable);
      max_fd = std::max(max_fd, fd);
    }
    timeval tv = {0, 100000};
    const int n = ::select(max_fd + 1, &readable, &writable, nullptr, &tv);
    if (n <= 0) continue;
    for (auto it = clients.begin(); it != clients.end();) {
      const int fd = it->first;
      std::string& pending = it->second;
      bool close_it = false;
      if (FD_ISSET(fd, &readable)) {
        const ssize_t r = ::read(fd, buf, sizeof(buf));
        if (r > 0) {
          slow.Apply({buf, static_cast<size_t>(r)});
          pending.append(buf, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close_it = pending.empty() || r < 0;
        }
      }
      if (!close_it && !pending.empty()) {
        const ssize_t w = ::send(fd, pending.data(), pending.size(),
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          pending.erase(0, static_cast<size_t>(w));
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          close_it = true;
        }
      }
      if (close_it) {
        ::close(fd);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
    if (FD_ISSET(listen_fd, &readable)) {
      for (int k = 0; k < 64; ++k) {
        const int fd = baton::baseline::AcceptOne(listen_fd, true);
        if (fd < 0) break;
        if (fd >= FD_SETSIZE) {
          // FD_SET on it would write past the end of the fd_set.
          ::close(fd);
          LOG_EVERY_N(WARNING, 1000)
              << "refusing connection: descriptor " << fd << " >= FD_SETSIZE ("
              << FD_SETSIZE << "); " << ++refused << " refused so far";
          continue;
        }
        clients.emplace(fd, std::string());
      }
    }
  }
  for (const auto& [fd, pending] : clients) ::close(fd);
  ::close(listen_fd);
  if (slow.enabled()) LOG(INFO) << slow.Summary();
  LOG(INFO) << "stopped";
  return 0;
}
