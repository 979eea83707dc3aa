// Test-only header: what the Reactor tests under tests/lib/ share (a started
// server on a loopback port, small handlers, bounded waits, and the peer
// that reaches the core's test hooks). Not part of baton's API.
#ifndef BATON_TESTS_LIB_REACTOR_FIXTURE_H_
#define BATON_TESTS_LIB_REACTOR_FIXTURE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/string_view.h"
#include "baton/connection.h"
#include "baton/reactor.h"

namespace baton {
namespace internal {

// Reaches the core's test hooks (lib/internal/reactor_core.h); defined in
// reactor_fixture.cc so that the tests themselves need only the public API.
class ReactorTestPeer {
 public:
  // Injects a synthetic epoll event, as if epoll_wait had returned it.
  static void InjectEvent(Reactor& reactor, uint64_t data, uint32_t events);
  // Holds every worker out of epoll_wait until ResumePolling.
  static void HoldPolling(Reactor& reactor);
  static void ResumePolling(Reactor& reactor);
  // Entries waiting in the reactor's timer queue: reactor timers,
  // per-connection timers, connect deadlines and back-offs, the idle sweep.
  static size_t PendingTimers(Reactor& reactor);
  // Host name lookups of Connect in flight (or finished and not yet taken).
  static size_t PendingLookups(Reactor& reactor);
  // Stops the clock of the reactor's host name answer cache (from then on
  // it moves only by AdvanceDnsCacheClock, which stops it too), so cached
  // answers expire at exact times without waiting.
  static void FreezeDnsCacheClock(Reactor& reactor);
  static void AdvanceDnsCacheClock(Reactor& reactor, absl::Duration by);
};

}  // namespace internal

namespace testing {

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

HandlerFactory EchoFactory();

struct Server {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
};

// Creates a reactor, listens on a loopback port chosen by the kernel and
// starts it; failures are reported as gtest failures.
Server StartServer(ReactorOptions options, HandlerFactory factory);

ReactorOptions Threads(int n);

// Waits (bounded) for `predicate`; returns its last value.
template <typename F>
bool Eventually(F predicate, int timeout_ms = 10000) {
  for (int waited = 0; waited < timeout_ms; waited += 5) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

// errno of a blocking connect to 127.0.0.1:`port` (0 if it connected). On
// loopback a closed port answers ECONNREFUSED at once: no timeout involved.
int ConnectErrno(int port);

// A handler that publishes its connection id so other threads can write.
class Registering : public ConnectionHandler {
 public:
  explicit Registering(std::function<void(ConnectionId)> on_open)
      : on_open_(std::move(on_open)) {}
  void OnOpen(Connection& conn) override { on_open_(conn.id()); }
  void OnData(Connection&, absl::string_view) override {}

 private:
  std::function<void(ConnectionId)> on_open_;
};

// Answers the first byte with `size` bytes.
class Flood : public ConnectionHandler {
 public:
  explicit Flood(size_t size) : reply_(size, 'f') {}
  void OnData(Connection& conn, absl::string_view) override {
    if (!sent_) conn.Write(reply_);
    sent_ = true;
  }

 private:
  std::string reply_;
  bool sent_ = false;
};

}  // namespace testing
}  // namespace baton

#endif  // BATON_TESTS_LIB_REACTOR_FIXTURE_H_
