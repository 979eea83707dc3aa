// Client library: ping-pong load.
#include "client/pingpong.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/tls/tls_session.h"

namespace baton::client {
namespace {

// Distinct payloads rotated across messages, so a reply that repeats or
// skips a message is caught, not only a corrupted byte.
constexpr int kPayloads = 4;

struct Conn {
  int fd = -1;
  uint32_t index = 0;
  uint64_t seq = 0;
  size_t sent = 0;
  size_t received = 0;
  int64_t started_ns = 0;
  bool want_out = false;
  bool slow = false;  // sends messages marked with slow_byte
  bool done = false;  // completed round_trips_per_connection; closed
  // TLS connections only: the engine and the ciphertext not sent yet.
  std::unique_ptr<tls::TlsSession> tls;
  std::string tls_out;
  size_t tls_out_sent = 0;
};

class Worker {
 public:
  Worker(const PingPongOptions& o, int id, std::atomic<bool>* abort)
      : o_(o), id_(id), abort_(abort) {}

  absl::Status Run(int64_t start_ns, int64_t measure_ns, int64_t end_ns);
  // [0]: fast connections, [1]: slow ones.
  const Histogram& latency(int slow) const { return latency_[slow]; }
  int64_t measured(int slow) const { return measured_[slow]; }

 private:
  const std::string& PayloadFor(const Conn& c) const {
    return payloads_[c.slow][(c.seq + c.index) % kPayloads];
  }
  // Connects `c` (and starts its TLS handshake); registers it with epoll.
  absl::Status Open(Conn& c);
  // Sends the current message from its start.
  absl::Status StartMessage(Conn& c);
  // Sends what is left of the current message (or, TLS, of its ciphertext).
  absl::Status Send(Conn& c);
  absl::Status SendTls(Conn& c);
  absl::Status Receive(Conn& c, int64_t now, int64_t measure_ns);
  absl::Status ReceiveTls(Conn& c, int64_t now, int64_t measure_ns);
  // Checks `n` reply bytes against the message; on a whole round trip,
  // records it and starts the next message.
  absl::Status Consume(Conn& c, const char* data, size_t n, int64_t now,
                       int64_t measure_ns);
  void SetInterest(Conn& c, bool want_out);

  const PingPongOptions& o_;
  const int id_;
  std::atomic<bool>* abort_;
  int epfd_ = -1;
  std::vector<std::string> payloads_[2];  // fast, slow
  std::vector<Conn> conns_;
  std::vector<char> buffer_;
  std::vector<char> plaintext_;  // TLS: decrypted reply bytes
  Histogram latency_[2];
  int64_t measured_[2] = {0, 0};
  int open_ = 0;  // connections still exchanging messages
};

absl::Status Worker::Open(Conn& c) {
  absl::StatusOr<int> fd = ConnectBlocking(o_.endpoint, o_.timeout_ms);
  if (!fd.ok()) return fd.status();
  ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
  c.fd = *fd;
  c.want_out = false;
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = c.index;
  ::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
  if (o_.tls == nullptr) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
      tls::TlsSession::Create(o_.tls);
  if (!session.ok()) return session.status();
  c.tls = *std::move(session);
  c.tls_out.clear();
  c.tls_out_sent = 0;
  c.tls->Read(nullptr, 0);  // the ClientHello
  return SendTls(c);
}

absl::Status Worker::StartMessage(Conn& c) {
  if (c.tls == nullptr) return Send(c);
  // Held by the engine until the handshake completes.
  const absl::Status written = c.tls->Write(PayloadFor(c));
  if (!written.ok()) return written;
  return SendTls(c);
}

absl::Status Worker::SendTls(Conn& c) {
  c.tls->TakeOutput(&c.tls_out);
  while (c.tls_out_sent < c.tls_out.size()) {
    const ssize_t n = ::send(c.fd, c.tls_out.data() + c.tls_out_sent,
                             c.tls_out.size() - c.tls_out_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        SetInterest(c, true);
        return absl::OkStatus();
      }
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": send failed: ", std::strerror(errno)));
    }
    c.tls_out_sent += static_cast<size_t>(n);
  }
  c.tls_out.clear();
  c.tls_out_sent = 0;
  if (c.want_out) SetInterest(c, false);
  return absl::OkStatus();
}

absl::Status Worker::Send(Conn& c) {
  if (c.tls != nullptr) return SendTls(c);
  const std::string& payload = PayloadFor(c);
  while (c.sent < payload.size()) {
    const ssize_t n = ::send(c.fd, payload.data() + c.sent,
                             payload.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        SetInterest(c, true);
        return absl::OkStatus();
      }
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": send failed: ", std::strerror(errno)));
    }
    c.sent += static_cast<size_t>(n);
  }
  if (c.want_out) SetInterest(c, false);
  return absl::OkStatus();
}

void Worker::SetInterest(Conn& c, bool want_out) {
  epoll_event ev = {};
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
  ev.data.u32 = c.index;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.want_out = want_out;
}

absl::Status Worker::Receive(Conn& c, int64_t now, int64_t measure_ns) {
  if (c.tls != nullptr) return ReceiveTls(c, now, measure_ns);
  for (;;) {
    const std::string& expected = PayloadFor(c);
    const size_t want = std::min(buffer_.size(), expected.size() - c.received);
    const ssize_t n = ::recv(c.fd, buffer_.data(), want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": receive failed: ", std::strerror(errno)));
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": server closed the connection after ",
          c.received, " of ", expected.size(), " reply bytes"));
    }
    const uint64_t seq = c.seq;
    const absl::Status status =
        Consume(c, buffer_.data(), static_cast<size_t>(n), now, measure_ns);
    if (!status.ok() || c.seq != seq) return status;
  }
}

absl::Status Worker::ReceiveTls(Conn& c, int64_t now, int64_t measure_ns) {
  // Bounded: epoll is level-triggered, so what is left signals again.
  for (int reads = 0; reads < 64; ++reads) {
    const ssize_t n = ::recv(c.fd, buffer_.data(), buffer_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": receive failed: ", std::strerror(errno)));
    }
    if (n == 0) {
      c.tls->FeedEof();
    } else {
      c.tls->Feed(absl::string_view(buffer_.data(), n));
    }
    // Everything the engine can decrypt now, then whatever it has to say
    // (handshake messages, alerts).
    for (;;) {
      const size_t want = PayloadFor(c).size() - c.received;
      const size_t got =
          c.tls->Read(plaintext_.data(), std::min(plaintext_.size(), want));
      if (got == 0) break;
      const uint64_t seq = c.seq;
      const absl::Status status =
          Consume(c, plaintext_.data(), got, now, measure_ns);
      if (!status.ok() || c.done) return status;
      // A new connection replaced this one: its input is gone.
      if (c.seq != seq && o_.tls_new_handshake_per_request) {
        return absl::OkStatus();
      }
    }
    if (c.tls->state() != tls::TlsSession::State::kHandshaking &&
        c.tls->state() != tls::TlsSession::State::kOpen) {
      SendTls(c).IgnoreError();  // an alert, if any
      return absl::UnavailableError(absl::StrCat(
          "connection ", c.index, ": ",
          c.tls->status().ok() ? "server closed the TLS session"
                               : c.tls->status().message(),
          " after ", c.received, " of ", PayloadFor(c).size(), " reply bytes"));
    }
    const absl::Status sent = SendTls(c);
    if (!sent.ok()) return sent;
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("connection ", c.index,
                       ": server closed the connection during the "
                       "TLS handshake"));
    }
  }
  return absl::OkStatus();
}

absl::Status Worker::Consume(Conn& c, const char* data, size_t n, int64_t now,
                             int64_t measure_ns) {
  const std::string& expected = PayloadFor(c);
  if (std::memcmp(data, expected.data() + c.received, n) != 0) {
    size_t at = 0;
    while (data[at] == expected[c.received + at]) ++at;
    return absl::DataLossError(
        absl::StrCat("connection ", c.index, ": reply byte ", c.received + at,
                     " of message ", c.seq, " differs from what was sent"));
  }
  c.received += n;
  if (c.received < expected.size()) return absl::OkStatus();
  // A whole round trip.
  if (c.started_ns >= measure_ns) {
    latency_[c.slow].Record(now - c.started_ns);
    ++measured_[c.slow];
  }
  if (o_.progress != nullptr) {
    o_.progress->fetch_add(1, std::memory_order_relaxed);
  }
  ++c.seq;
  c.sent = 0;
  c.received = 0;
  c.started_ns = now;
  if (o_.round_trips_per_connection > 0 &&
      c.seq >= static_cast<uint64_t>(o_.round_trips_per_connection)) {
    // Its share is done: nothing is left in flight on it.
    if (c.tls != nullptr) {
      c.tls->Close();
      SendTls(c).IgnoreError();  // close_notify, best effort
    }
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    c.done = true;
    --open_;
    return absl::OkStatus();
  }
  if (c.tls != nullptr && o_.tls_new_handshake_per_request) {
    c.tls->Close();
    SendTls(c).IgnoreError();  // close_notify, best effort
    ::close(c.fd);
    c.fd = -1;
    const absl::Status opened = Open(c);
    if (!opened.ok()) return opened;
  }
  return StartMessage(c);
}

absl::Status Worker::Run(int64_t start_ns, int64_t measure_ns, int64_t end_ns) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return absl::InternalError("epoll_create1");
  buffer_.resize(std::max<size_t>(o_.size, 4096));
  if (o_.tls != nullptr) plaintext_.resize(std::max<size_t>(o_.size, 16384));
  for (int i = 0; i < kPayloads; ++i) {
    // The marker byte only ever starts a slow message.
    std::string p = Payload(o_.size, id_ * 7919 + i);
    for (char& b : p) {
      if (static_cast<unsigned char>(b) == o_.slow_byte) b ^= 1;
    }
    payloads_[0].push_back(p);
    p[0] = static_cast<char>(o_.slow_byte);
    payloads_[1].push_back(p);
  }
  conns_.resize(o_.connections);
  absl::Status status;
  for (int i = 0; i < o_.connections && status.ok(); ++i) {
    Conn& c = conns_[i];
    c.index = static_cast<uint32_t>(i);
    c.slow = i < o_.slow_connections;
    const absl::Status opened = Open(c);
    if (!opened.ok()) {
      status = absl::Status(
          opened.code(), absl::StrCat("thread ", id_, ", connection ", i, ": ",
                                      opened.message()));
      break;
    }
    ++open_;
  }
  const int64_t now0 = std::max(NowNanos(), start_ns);
  for (Conn& c : conns_) {
    if (!status.ok() || c.fd < 0) break;
    c.started_ns = now0;
    status = StartMessage(c);
  }
  std::vector<epoll_event> events(256);
  const int64_t timeout_ns = int64_t{o_.timeout_ms} * 1000000;
  int64_t last_stall_check = now0;
  while (status.ok() && open_ > 0 && !abort_->load(std::memory_order_relaxed)) {
    const int n =
        ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 50);
    const int64_t now = NowNanos();
    if (now >= end_ns) break;
    for (int i = 0; i < n && status.ok(); ++i) {
      Conn& c = conns_[events[i].data.u32];
      if (events[i].events & EPOLLOUT) status = Send(c);
      if (status.ok() && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        status = Receive(c, now, measure_ns);
      }
    }
    if (now - last_stall_check > 50000000) {
      last_stall_check = now;
      for (const Conn& c : conns_) {
        if (!c.done && now - c.started_ns > timeout_ns) {
          status = absl::DeadlineExceededError(
              absl::StrCat("thread ", id_, ", connection ", c.index,
                           ": no reply for ", o_.timeout_ms, " ms (",
                           c.received, " of ", o_.size, " bytes back)"));
          break;
        }
      }
    }
  }
  for (Conn& c : conns_) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(epfd_);
  if (!status.ok()) abort_->store(true);
  return status;
}

}  // namespace

absl::StatusOr<PingPongResult> RunPingPong(const PingPongOptions& options) {
  if (options.threads < 1 || options.connections < 1 || options.size < 1) {
    return absl::InvalidArgumentError(
        "threads, connections and size must be positive");
  }
  if (options.slow_connections < 0 ||
      options.slow_connections > options.connections) {
    return absl::InvalidArgumentError(absl::StrCat(
        "slow connections (", options.slow_connections,
        ") must be in 0..connections (", options.connections, ")"));
  }
  if (options.round_trips_per_connection < 0) {
    return absl::InvalidArgumentError(
        "round trips per connection must not be negative");
  }
  std::atomic<bool> abort{false};
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(options, t, &abort));
  }
  const int64_t start = NowNanos();
  const int64_t measure = start + static_cast<int64_t>(options.warmup_s * 1e9);
  const int64_t end = measure + static_cast<int64_t>(options.duration_s * 1e9);
  std::vector<absl::Status> statuses(options.threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back(
        [&, t] { statuses[t] = workers[t]->Run(start, measure, end); });
  }
  for (auto& t : threads) t.join();
  const int64_t finished = NowNanos();
  PingPongResult result;
  for (int t = 0; t < options.threads; ++t) {
    if (!statuses[t].ok()) return statuses[t];
    for (int slow = 0; slow < 2; ++slow) {
      PingPongClass& cls = slow ? result.slow : result.fast;
      cls.round_trips += workers[t]->measured(slow);
      cls.latency.Merge(workers[t]->latency(slow));
      result.round_trips += workers[t]->measured(slow);
      result.latency.Merge(workers[t]->latency(slow));
    }
  }
  result.slow.connections = options.threads * options.slow_connections;
  result.fast.connections =
      options.threads * options.connections - result.slow.connections;
  result.seconds = static_cast<double>(std::min(finished, end) - measure) / 1e9;
  return result;
}

}  // namespace baton::client
