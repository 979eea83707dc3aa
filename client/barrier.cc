// Client library: the barrier bench.
#include "client/barrier.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

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

std::string RoundTrip(int fd, const std::string& message, std::string* reply) {
  size_t off = 0;
  while (off < message.size()) {
    const ssize_t n = ::send(fd, message.data() + off, message.size() - off,
                             MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::StrCat("send failed: ", std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  reply->resize(message.size());
  off = 0;
  while (off < message.size()) {
    const ssize_t n = ::recv(fd, &(*reply)[off], message.size() - off, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK
                 ? std::string("timed out waiting for the reply")
                 : absl::StrCat("receive failed: ", std::strerror(errno));
    }
    if (n == 0) {
      return absl::StrCat("server closed the connection after ", off, " of ",
                          message.size(), " reply bytes");
    }
    off += static_cast<size_t>(n);
  }
  if (*reply != message) {
    size_t at = 0;
    while ((*reply)[at] == message[at]) ++at;
    return absl::StrCat("reply byte ", at, " differs from what was sent");
  }
  return "";
}

void Worker(const BarrierOptions& o, StartBarrier* barrier,
            BarrierThreadResult* me) {
  absl::StatusOr<int> fd = ConnectBlocking(o.endpoint, o.timeout_ms);
  if (!fd.ok()) me->error = std::string(fd.status().message());
  // Arrive even after a failed connect, so the others are not held forever.
  barrier->Arrive(me);
  me->started_seq = barrier->seq.fetch_add(1);
  if (!fd.ok()) return;
  const std::string message = Payload(o.size, static_cast<uint32_t>(me->id));
  std::string reply;
  int64_t total_ns = 0;
  for (int r = 0; r < o.rounds; ++r) {
    const int64_t t0 = NowNanos();
    std::string error = RoundTrip(*fd, message, &reply);
    total_ns += NowNanos() - t0;
    if (!error.empty()) {
      me->error = absl::StrCat("round ", r, ": ", error);
      break;
    }
  }
  me->avg_us = static_cast<double>(total_ns) / o.rounds / 1000.0;
  ::close(*fd);
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
      return absl::ResourceExhaustedError(absl::StrCat(
          "could only start ", t, " of ", options.threads,
          " threads: ", e.what()));
    }
  }
  barrier.ReleaseWhenAll(options.threads);
  const int64_t released = NowNanos();
  for (auto& t : threads) t.join();
  result.wall_s = static_cast<double>(NowNanos() - released) / 1e9;
  for (const auto& t : result.threads) {
    if (!t.error.empty()) ++result.errors;
  }
  return result;
}

}  // namespace baton::client
