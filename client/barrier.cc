// Client library: the barrier bench.
#include "client/barrier.h"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "client/tls_client.h"
#include "lib/tls/tls_session.h"

namespace baton::client {
namespace {

// The start barrier, as in kecho's bench: a mutex, a condition variable, a
// count of threads ready, and one pthread_cond_broadcast.
struct StartBarrier {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;  // workers -> main
  pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;     // main -> workers
  int ready = 0;
  bool go = false;
  std::atomic<int64_t> seq{0};

  ~StartBarrier() {
    pthread_cond_destroy(&go_cv);
    pthread_cond_destroy(&ready_cv);
    pthread_mutex_destroy(&mu);
  }

  // Called by each worker; returns once released.
  void Arrive(BarrierThreadResult* me) {
    pthread_mutex_lock(&mu);
    me->waited_seq = seq.fetch_add(1);
    ++ready;
    pthread_cond_signal(&ready_cv);
    while (!go) pthread_cond_wait(&go_cv, &mu);
    pthread_mutex_unlock(&mu);
  }

  // Called by the main thread: waits for `n` arrivals, then releases all.
  void ReleaseWhenAll(int n) {
    pthread_mutex_lock(&mu);
    while (ready < n) pthread_cond_wait(&ready_cv, &mu);
    go = true;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&mu);
  }
};

// Waits until `fd` is ready for `events` or `deadline_ns` passes; false on
// timeout.
bool WaitReady(int fd, short events, int64_t deadline_ns) {
  for (;;) {
    const int64_t left_ns = deadline_ns - NowNanos();
    if (left_ns <= 0) return false;
    pollfd p = {fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>((left_ns + 999999) / 1000000));
    // A poll error is left for the next send/recv to report.
    if (n > 0 || (n < 0 && errno != EINTR)) return true;
  }
}

// One round trip on a blocking socket whose receive timeout is `timeout_ms`.
// Returns "" when `message` came back byte for byte, else what went wrong.
//
// kecho's bench does a blocking send and a blocking receive, and so do we
// while the message fits the socket buffers (always, at kecho's 13 bytes):
// the send is tried without blocking and, once it is all out, the reply is
// read with plain blocking recv(). A message too big to send at once would
// deadlock that way (the server's echo fills our receive buffer while we
// still send), so until the send is done the reply is drained alongside it.
std::string RoundTrip(int fd, const std::string& message, int timeout_ms,
                      std::string* reply) {
  const int64_t deadline = NowNanos() + int64_t{timeout_ms} * 1000000;
  const std::string timed_out =
      absl::StrCat("timed out after ", timeout_ms, " ms waiting for the reply");
  reply->resize(message.size());
  size_t sent = 0;
  size_t got = 0;
  auto receive = [&](int flags) -> ssize_t {
    return ::recv(fd, &(*reply)[got], message.size() - got, flags);
  };
  auto closed = [&] {
    return absl::StrCat("server closed the connection after ", got, " of ",
                        message.size(), " reply bytes");
  };
  while (sent < message.size()) {
    const ssize_t n = ::send(fd, message.data() + sent, message.size() - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::StrCat("send failed: ", std::strerror(errno));
    }
    const ssize_t r = receive(MSG_DONTWAIT);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r == 0) {
      return closed();
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return absl::StrCat("receive failed: ", std::strerror(errno));
    } else if (!WaitReady(fd, POLLIN | POLLOUT, deadline)) {
      return timed_out;
    }
  }
  while (got < message.size()) {
    const ssize_t n = receive(0);  // blocks up to SO_RCVTIMEO
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK
                 ? timed_out
                 : absl::StrCat("receive failed: ", std::strerror(errno));
    }
    if (n == 0) return closed();
    got += static_cast<size_t>(n);
    // Only a reply that trickles in gets here twice; bound it as a whole.
    if (got < message.size() && NowNanos() > deadline) return timed_out;
  }
  if (*reply != message) {
    size_t at = 0;
    while ((*reply)[at] == message[at]) ++at;
    return absl::StrCat(
        "reply byte ", at, " of ", message.size(),
        " differs from what was sent (sent 0x",
        absl::Hex(static_cast<unsigned char>(message[at]), absl::kZeroPad2),
        ", got 0x",
        absl::Hex(static_cast<unsigned char>((*reply)[at]), absl::kZeroPad2),
        ")");
  }
  return "";
}

// With TLS: a session on `fd`, its handshake done and one untimed round
// trip of `message` made, which also takes in what a server sends after
// the handshake (TLS 1.3 session tickets) so the timed round trips carry
// only the echo; else null (and me->error set).
std::unique_ptr<tls::TlsSession> Handshake(const BarrierOptions& o, int fd,
                                           const std::string& message,
                                           BarrierThreadResult* me) {
  absl::StatusOr<std::unique_ptr<tls::TlsSession>> session =
      tls::TlsSession::Create(o.tls);
  if (!session.ok()) {
    me->error = std::string(session.status().message());
    return nullptr;
  }
  const absl::Status done = HandshakeBlocking(
      fd, **session, NowNanos() + int64_t{o.timeout_ms} * 1000000);
  if (!done.ok()) {
    me->error = absl::StrCat("TLS handshake: ", done.message());
    return nullptr;
  }
  std::string reply;
  const std::string error =
      TlsEchoRoundTrip(fd, **session, message, o.timeout_ms, &reply);
  if (!error.empty()) {
    me->error = absl::StrCat("untimed first round trip: ", error);
    return nullptr;
  }
  return *std::move(session);
}

void Worker(const BarrierOptions& o, StartBarrier* barrier,
            BarrierThreadResult* me) {
  absl::StatusOr<int> fd = ConnectBlocking(o.endpoint, o.timeout_ms);
  // Each thread its own bytes, so a reply crossed between connections is
  // caught too.
  const std::string message = Payload(o.size, static_cast<uint32_t>(me->id));
  std::unique_ptr<tls::TlsSession> session;
  if (!fd.ok()) {
    me->error = std::string(fd.status().message());
  } else if (o.tls != nullptr) {
    session = Handshake(o, *fd, message, me);
    if (session == nullptr) {
      ::close(*fd);
      fd = absl::UnavailableError(me->error);
    }
  }
  if (o.progress != nullptr) o.progress->connected.fetch_add(1);
  // Arrive even after a failed connect, so the others are not held forever.
  barrier->Arrive(me);
  me->started_seq = barrier->seq.fetch_add(1);
  if (fd.ok()) {
    std::string reply;
    int64_t total_ns = 0;
    for (int r = 0; r < o.rounds; ++r) {
      const int64_t t0 = NowNanos();
      std::string error =
          session != nullptr
              ? TlsEchoRoundTrip(*fd, *session, message, o.timeout_ms, &reply)
              : RoundTrip(*fd, message, o.timeout_ms, &reply);
      total_ns += NowNanos() - t0;
      if (!error.empty()) {
        me->error = absl::StrCat("round ", r, ": ", error);
        break;
      }
    }
    me->avg_us = static_cast<double>(total_ns) / o.rounds / 1000.0;
    if (session != nullptr) CloseTls(*fd, *session);
    ::close(*fd);
  }
  if (o.progress != nullptr) o.progress->finished.fetch_add(1);
}

}  // namespace

absl::StatusOr<BarrierResult> RunBarrier(const BarrierOptions& options) {
  if (options.threads < 1 || options.rounds < 1 || options.size < 1) {
    return absl::InvalidArgumentError(
        "threads, rounds and size must be positive");
  }
  StartBarrier barrier;
  BarrierResult result;
  result.threads.resize(options.threads);
  std::vector<std::thread> threads;
  threads.reserve(options.threads);
  for (int t = 0; t < options.threads; ++t) {
    result.threads[t].id = t;
    try {
      threads.emplace_back(Worker, std::cref(options), &barrier,
                           &result.threads[t]);
    } catch (const std::system_error& e) {
      // Release the ones already waiting before giving up.
      barrier.ReleaseWhenAll(t);
      for (auto& th : threads) th.join();
      return absl::ResourceExhaustedError(absl::StrCat("could only start ", t,
                                                       " of ", options.threads,
                                                       " threads: ", e.what()));
    }
  }
  barrier.ReleaseWhenAll(options.threads);
  const int64_t released = NowNanos();
  if (options.progress != nullptr) options.progress->released.store(true);
  for (auto& t : threads) t.join();
  result.wall_s = static_cast<double>(NowNanos() - released) / 1e9;
  for (const auto& t : result.threads) {
    if (!t.error.empty()) ++result.errors;
  }
  return result;
}

std::vector<ErrorGroup> GroupErrors(const BarrierResult& result) {
  std::vector<ErrorGroup> groups;
  absl::flat_hash_map<std::string, size_t> index;        // message -> groups[i]
  for (const BarrierThreadResult& t : result.threads) {  // sorted by id
    if (t.error.empty()) continue;
    auto [it, added] = index.try_emplace(t.error, groups.size());
    if (added) groups.push_back({t.error, 0, t.id});
    ++groups[it->second].threads;
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const ErrorGroup& a, const ErrorGroup& b) {
                     return a.threads > b.threads;
                   });
  return groups;
}

}  // namespace baton::client
