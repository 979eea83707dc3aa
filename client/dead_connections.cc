// Client library: DeadConnections.
#include "client/dead_connections.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace baton::client {
namespace {

constexpr int kEventBatch = 1024;
constexpr int64_t kMillis = 1000000;

}  // namespace

DeadConnections::DeadConnections(DeadConnOptions options)
    : options_(std::move(options)),
      // The request line and one header, then a header that never ends: the
      // server has to keep this connection's parser state until it times
      // out or we go.
      partial_(absl::StrCat("GET /slow HTTP/1.1\r\nHost: ",
                            options_.host_header, "\r\nX-Slow-Link: ")),
      epfd_(::epoll_create1(EPOLL_CLOEXEC)) {}

DeadConnections::~DeadConnections() {
  CloseAll();
  if (epfd_ >= 0) ::close(epfd_);
}

void DeadConnections::Failed(Slot& slot, const std::string& why) {
  if (slot.fd >= 0) ::close(slot.fd);  // also leaves the epoll set
  slot.fd = -1;
  slot.connecting = false;
  ++failed_;
  if (first_error_.empty()) first_error_ = why;
}

void DeadConnections::Connected(Slot& slot) {
  slot.connecting = false;
  if (options_.partial_request) {
    // A few dozen bytes always fit an empty socket buffer.
    const ssize_t n = ::send(slot.fd, partial_.data(), partial_.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(partial_.size())) {
      Failed(slot, absl::StrCat("send on a new connection: ",
                                n < 0 ? std::strerror(errno) : "short write"));
      return;
    }
  }
  // From now on only the server closing it is of interest. Level-triggered
  // EPOLLRDHUP keeps firing until we close, which we do at once.
  epoll_event ev = {};
  ev.events = EPOLLRDHUP;
  ev.data.u32 = static_cast<uint32_t>(&slot - slots_.data());
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, slot.fd, &ev);
  ++held_;
}

void DeadConnections::Open(
    const std::function<bool()>& should_stop,
    const std::function<void(int opened, int failed)>& progress,
    int progress_every) {
  if (epfd_ < 0) {
    failed_ = options_.connections;
    first_error_ = absl::StrCat("epoll_create1: ", std::strerror(errno));
    return;
  }
  slots_.resize(static_cast<size_t>(options_.connections));
  const int total = options_.connections;
  const int64_t timeout_ns = int64_t{options_.timeout_ms} * kMillis;
  int next = 0;      // next slot to start
  int oldest = 0;    // no slot before this one is still connecting
  int pending = 0;   // connects in flight
  int reported = 0;  // attempts covered by the last progress call
  std::vector<epoll_event> events(kEventBatch);
  auto attempts = [&] { return held_ + failed_ + dropped_; };
  while (attempts() < total && !should_stop()) {
    while (pending < options_.in_flight && next < total) {
      Slot& slot = slots_[next++];
      absl::StatusOr<int> fd = ConnectNonBlocking(options_.endpoint);
      if (!fd.ok()) {
        Failed(slot, std::string(fd.status().message()));
        continue;
      }
      slot.fd = *fd;
      slot.connecting = true;
      slot.started_ns = NowNanos();
      epoll_event ev = {};
      ev.events = EPOLLOUT;
      ev.data.u32 = static_cast<uint32_t>(&slot - slots_.data());
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, slot.fd, &ev);
      ++pending;
    }
    if (pending > 0) {
      const int n =
          ::epoll_wait(epfd_, events.data(), kEventBatch, /*timeout=*/100);
      for (int i = 0; i < n; ++i) {
        Slot& slot = slots_[events[i].data.u32];
        if (slot.fd < 0) continue;
        if (!slot.connecting) {
          // Closed by the server before all were open.
          ::close(slot.fd);
          slot.fd = -1;
          --held_;
          ++dropped_;
          continue;
        }
        --pending;
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Failed(slot, absl::StrCat("connect to ", options_.endpoint.text, ": ",
                                    std::strerror(err)));
        } else {
          Connected(slot);
        }
      }
      // Connects finish roughly in order, so only the window from the
      // oldest unfinished one to `next` is scanned for timeouts.
      const int64_t now = NowNanos();
      while (oldest < next && !slots_[oldest].connecting) ++oldest;
      for (int i = oldest; i < next; ++i) {
        Slot& slot = slots_[i];
        if (slot.connecting && now - slot.started_ns > timeout_ns) {
          --pending;
          Failed(slot, absl::StrCat("connect to ", options_.endpoint.text,
                                    ": no answer within ", options_.timeout_ms,
                                    " ms"));
        }
      }
    }
    if (progress && attempts() - reported >= progress_every) {
      reported = attempts();
      progress(held_, failed_);
    }
  }
  // Stopped early: connects still in flight count as neither.
  for (Slot& slot : slots_) {
    if (slot.connecting) {
      ::close(slot.fd);
      slot.fd = -1;
      slot.connecting = false;
    }
  }
}

void DeadConnections::Hold(int64_t until_ns,
                           const std::function<bool()>& should_stop) {
  std::vector<epoll_event> events(kEventBatch);
  while (!should_stop()) {
    const int64_t left_ns = until_ns - NowNanos();
    if (left_ns <= 0) break;
    const int wait_ms = static_cast<int>(
        std::min<int64_t>(200, (left_ns + kMillis - 1) / kMillis));
    const int n = ::epoll_wait(epfd_, events.data(), kEventBatch, wait_ms);
    for (int i = 0; i < n; ++i) {
      Slot& slot = slots_[events[i].data.u32];
      if (slot.fd < 0) continue;
      ::close(slot.fd);
      slot.fd = -1;
      --held_;
      ++dropped_;
    }
  }
}

void DeadConnections::CloseAll() {
  for (Slot& slot : slots_) {
    if (slot.fd >= 0) ::close(slot.fd);
    slot.fd = -1;
    slot.connecting = false;
  }
  held_ = 0;
}

}  // namespace baton::client
