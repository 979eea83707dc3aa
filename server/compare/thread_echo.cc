// //server/compare:thread_echo — one thread per connection with blocking I/O,
// the model a work queue replaced in khttpd. Comparison baseline.
#include <glog/logging.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "server/compare/baseline_listener.h"
#include "server/compare/slow_rule_flags.h"

namespace {

std::mutex g_mu;
std::set<int> g_open;  // connection fds, for shutdown at stop
std::atomic<int> g_running{0};

void Serve(int fd) {
  char buf[65536];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    baton::SlowRuleFromFlags().Apply({buf, static_cast<size_t>(r)});
    if (!baton::baseline::SendAll(fd, buf, static_cast<size_t>(r))) break;
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_open.erase(fd);
  }
  ::close(fd);
  --g_running;
}

}  // namespace

int main(int argc, char** argv) {
  const int listen_fd = baton::baseline::StartListening(
      &argc, &argv,
      "thread-per-connection blocking echo server (comparison baseline)",
      /*nonblocking=*/false);
  if (listen_fd < 0) return 1;
  const baton::SlowRule& slow = baton::SlowRuleFromFlags();
  baton::ActiveSlowRule();  // logs the rule if on
  while (!baton::baseline::g_stopping) {
    pollfd p = {listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = baton::baseline::AcceptOne(listen_fd, false);
    if (fd < 0) continue;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_open.insert(fd);
    }
    ++g_running;
    try {
      std::thread(Serve, fd).detach();
    } catch (const std::system_error& e) {
      LOG_EVERY_N(WARNING, 100) << "cannot start a thread: " << e.what();
      {
        std::lock_guard<std::mutex> lock(g_mu);
        g_open.erase(fd);
      }
      ::close(fd);
      --g_running;
    }
  }
  ::close(listen_fd);
  {
    // Wake every blocked reader; each thread then closes its own fd.
    std::lock_guard<std::mutex> lock(g_mu);
    for (int fd : g_open) ::shutdown(fd, SHUT_RDWR);
  }
  for (int i = 0; i < 200 && g_running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (slow.enabled()) LOG(INFO) << slow.Summary();
  LOG(INFO) << "stopped; " << g_running.load() << " threads still running";
  return 0;
}
