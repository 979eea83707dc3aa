// //server/compare:reuseport_echo — one event loop per thread, the nginx /
// muduo model: each thread owns an epoll instance and its own listening
// socket, all bound to one port with SO_REUSEPORT, so the kernel spreads new
// connections over the threads and a connection stays on its thread for
// life. Comparison baseline.
//
// Written as nginx's epoll module does it: connections registered once,
// edge-triggered, for input and output (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
// EPOLLET), each read until EAGAIN and each reply sent at once, with only
// what the socket did not take queued for EPOLLOUT; non-blocking sockets
// with TCP_NODELAY. A peer that does not read its replies stops being read
// while more than 1 MiB is queued for it. --slow_us etc.
// (server/compare/slow_rule.h) delay marked messages for the head-of-line
// benchmark.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "lib/internal/socket_util.h"
#include "lib/net/endpoint.h"
#include "lib/net/socket_options.h"
#include "server/compare/slow_rule_flags.h"
#include "server/flags.h"

// --threads (server/flags.cc): event loops, each a thread with its own
// epoll and SO_REUSEPORT listener (0: one per CPU).

namespace {

constexpr size_t kMaxPending = 1 << 20;
constexpr int kMaxEvents = 64;

std::atomic<bool> g_stopping{false};

struct Conn {
  int fd = -1;
  std::string pending;  // reply bytes the socket did not take yet
  bool paused = false;  // stopped reading at kMaxPending; data may be left
  bool eof = false;     // the peer shut down its sending side
};

// One thread's loop; touched by that thread only.
class Loop {
 public:
  Loop(int listen_fd, const baton::SlowRule* slow)
      : listen_fd_(listen_fd), slow_(slow) {}
  ~Loop() {
    for (Conn* c : conns_) {
      ::close(c->fd);
      delete c;
    }
    if (epfd_ >= 0) ::close(epfd_);
    ::close(listen_fd_);
  }

  void Run() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    PCHECK(epfd_ >= 0) << "epoll_create1";
    // The listener stays level-triggered: whatever one bounded accept
    // round leaves behind fires again.
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    PCHECK(::epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) == 0);
    epoll_event events[kMaxEvents];
    while (!g_stopping.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(epfd_, events, kMaxEvents, 100);
      for (int i = 0; i < n; ++i) {
        Conn* c = static_cast<Conn*>(events[i].data.ptr);
        if (c == nullptr) {
          Accept();
        } else if (!Handle(c, events[i].events)) {
          Close(c);
        }
      }
    }
  }

 private:
  void Accept() {
    for (int k = 0; k < 64; ++k) {
      const int fd =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          LOG_EVERY_N(WARNING, 1000) << "accept: out of descriptors";
          ::usleep(10000);  // no busy loop while exhausted
        }
        return;
      }
      baton::net::SetNoDelay(fd);
      Conn* c = new Conn;
      c->fd = fd;
      epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = c;
      PCHECK(::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0);
      conns_.insert(c);
    }
  }

  // False: close the connection.
  bool Handle(Conn* c, uint32_t events) {
    if (events & EPOLLERR) return false;
    if ((events & EPOLLOUT) && !Flush(c)) return false;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) || c->paused) {
      if (!c->paused || c->pending.size() < kMaxPending) {
        if (!ReadAll(c)) return false;
      }
    }
    return !(c->eof && c->pending.empty());
  }

  // Reads until EAGAIN (edge-triggered: stopping early would strand data),
  // EOF, or the pending cap; echoes as it goes.
  bool ReadAll(Conn* c) {
    c->paused = false;
    while (!c->eof) {
      if (c->pending.size() >= kMaxPending) {
        c->paused = true;  // resumed by Flush once replies drain
        return true;
      }
      const ssize_t n = ::read(c->fd, buf_, sizeof(buf_));
      if (n > 0) {
        if (slow_ != nullptr) slow_->Apply({buf_, static_cast<size_t>(n)});
        size_t sent = 0;
        if (c->pending.empty()) {
          const ssize_t w = ::send(c->fd, buf_, static_cast<size_t>(n),
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w < 0 && errno != EAGAIN && errno != EINTR) return false;
          sent = w > 0 ? static_cast<size_t>(w) : 0;
        }
        c->pending.append(buf_ + sent, static_cast<size_t>(n) - sent);
        continue;
      }
      if (n == 0) {
        c->eof = true;
        break;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    return true;
  }

  // Sends what is queued until EAGAIN; resumes a paused reader.
  bool Flush(Conn* c) {
    while (!c->pending.empty()) {
      const ssize_t w = ::send(c->fd, c->pending.data(), c->pending.size(),
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        c->pending.erase(0, static_cast<size_t>(w));
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      return false;
    }
    if (c->paused && c->pending.size() < kMaxPending) return ReadAll(c);
    return true;
  }

  void Close(Conn* c) {
    ::close(c->fd);  // also leaves the epoll set
    conns_.erase(c);
    delete c;
  }

  const int listen_fd_;
  const baton::SlowRule* const slow_;
  int epfd_ = -1;
  std::unordered_set<Conn*> conns_;
  char buf_[65536];
};

}  // namespace

int main(int argc, char** argv) {
  if (!baton::flags::InitServer(
          &argc, &argv,
          (std::string("echo server, one epoll loop and SO_REUSEPORT listener "
                       "per thread (nginx/muduo model; comparison "
                       "baseline)\n"
                       "usage: reuseport_echo [--port=N] [--address=A] "
                       "[--threads=N]\n") +
           baton::kSlowRuleUsage)
              .c_str())) {
    return 2;
  }
  if (baton::net::IsUnixEndpoint(FLAGS_address)) {
    LOG(ERROR) << "--address=" << FLAGS_address
               << ": this server listens on TCP only (SO_REUSEPORT)";
    return 2;
  }
  const sigset_t stop_signals = baton::flags::BlockStopSignals();
  const int threads = baton::flags::ThreadCount();
  const baton::SlowRule* slow = baton::ActiveSlowRule();

  std::vector<std::unique_ptr<Loop>> loops;
  int port = FLAGS_port;
  std::string where;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<baton::internal::ScopedFd> fd =
        baton::internal::CreateListener(FLAGS_address, port, 1024,
                                        /*reuse_port=*/true);
    if (!fd.ok()) {
      LOG(ERROR) << "cannot listen on " << FLAGS_address << ":" << port << ": "
                 << fd.status().message();
      return 1;
    }
    if (i == 0) {
      // --port=0: the other loops join the port the first one got.
      absl::StatusOr<int> got = baton::internal::LocalPort(fd->get());
      if (!got.ok()) {
        LOG(ERROR) << "cannot read the listening port: " << got.status();
        return 1;
      }
      port = *got;
      where = baton::internal::LocalAddressString(fd->get());
    }
    loops.push_back(std::make_unique<Loop>(fd->Release(), slow));
  }
  std::vector<std::thread> pool;
  for (auto& loop : loops) pool.emplace_back([l = loop.get()] { l->Run(); });
  LOG(INFO) << "listening on " << where << " with " << threads
            << " loops (SO_REUSEPORT)";

  const int signal = baton::flags::WaitForSignal(stop_signals);
  LOG(INFO) << "signal " << signal << ": stopping";
  g_stopping = true;
  for (auto& t : pool) t.join();
  loops.clear();
  if (slow != nullptr) LOG(INFO) << slow->Summary();
  LOG(INFO) << "stopped";
  return 0;
}
