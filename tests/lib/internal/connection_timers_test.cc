// Per-connection timers (Connection::RunAfter, lib/internal/
// connection_timers.cc): they run under the connection's claim, never
// concurrently with its other callbacks (also checked by ThreadSanitizer:
// the handler's state is plain, unsynchronised memory), are cancelled when
// the connection closes (their timer queue entries are gone), never run
// after OnClose, run on several threads at once when they fall due
// together, never run for an infinite delay, and are out of reach of
// Reactor::CancelTimer. Ordering is checked against reactor timers with
// later deadlines, never against wall time.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::internal::ReactorTestPeer;
using ::baton::testing::ConnectLoopback;
using ::baton::testing::Counter;
using ::baton::testing::Eventually;
using ::baton::testing::Notification;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::StartReactor;
using ::baton::testing::Threads;

constexpr std::chrono::seconds kBound{20};  // only limits a hang

std::atomic<int> g_violations{0};
std::atomic<int> g_timer_runs{0};
std::atomic<int> g_closes{0};

// Echoes, and on every message schedules timers that touch the same plain
// fields as the callbacks. Any overlap shows as `inside_` already set (and
// as a data race under tsan).
class Busy : public ConnectionHandler {
 public:
  void OnOpen(Connection& conn) override { Enter(), Leave(); }
  void OnData(Connection& conn, absl::string_view data) override {
    Enter();
    conn.Write(data);
    for (int i = 0; i < 3; ++i) {
      conn.RunAfter(absl::Microseconds(100 * i),
                    [this](Connection& c) { Tick(); });
    }
    Leave();
  }
  // The peer is gone: timers that are due at once, and one that is not,
  // all still pending when the default OnPeerClosed closes the connection
  // (it has nothing queued, so it closes in this same round).
  void OnPeerClosed(Connection& conn) override {
    Enter();
    for (int i = 0; i < 2; ++i) {
      conn.RunAfter(absl::ZeroDuration(), [this](Connection&) { Tick(); });
    }
    conn.RunAfter(absl::Hours(1), [this](Connection&) { Tick(); });
    Leave();
    ConnectionHandler::OnPeerClosed(conn);
  }
  void OnClose(Connection& conn, const absl::Status&) override {
    Enter();
    closed_ = true;
    // No timers from here on.
    if (conn.RunAfter(absl::ZeroDuration(), [](Connection&) {}) != 0) {
      g_violations.fetch_add(1);
    }
    g_closes.fetch_add(1);
    Leave();
  }

 private:
  void Tick() {
    Enter();
    ++ticks_;
    g_timer_runs.fetch_add(1);
    if (closed_) g_violations.fetch_add(1);
    Leave();
  }
  void Enter() {
    if (inside_) g_violations.fetch_add(1);
    inside_ = true;
  }
  void Leave() { inside_ = false; }
  bool inside_ = false;
  bool closed_ = false;
  int ticks_ = 0;
};

TEST(ConnectionTimersTest, NeverConcurrentWithOtherCallbacks) {
  g_violations = 0;
  g_timer_runs = 0;
  g_closes = 0;
  auto reactor = StartReactor(Threads(4));
  auto port =
      reactor->Listen(ListenOptions{}, [] { return std::make_unique<Busy>(); });
  ASSERT_TRUE(port.ok());
  constexpr int kClients = 8;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(*port);
      ASSERT_GE(fd, 0);
      for (int i = 0; i < 200; ++i) {
        const std::string msg = testing::Pattern(32, c * 1000 + i);
        ASSERT_TRUE(SendAll(fd, msg).ok());
        auto got = ReadExact(fd, msg.size());
        ASSERT_TRUE(got.ok());
        ASSERT_EQ(*got, msg);
      }
      ::close(fd);  // timers still pending are cancelled by the close
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_TRUE(Eventually([&] { return g_closes.load() == kClients; }));
  reactor->Stop();
  reactor->Wait();
  EXPECT_EQ(g_violations.load(), 0);
  EXPECT_GT(g_timer_runs.load(), 0);
}

// A timer still pending when the connection closes is cancelled: its
// timer queue entry is gone by the time OnClose runs, and it never runs.
TEST(ConnectionTimersTest, CancelledWhenTheConnectionCloses) {
  auto reactor = StartReactor(Threads(2));
  std::atomic<bool> fired{false};
  std::atomic<size_t> pending_at_close{0};
  Notification closed;
  Reactor* r = reactor.get();
  class Handler : public ConnectionHandler {
   public:
    Handler(Reactor* reactor, std::atomic<bool>* fired,
            std::atomic<size_t>* pending, Notification* closed)
        : reactor_(reactor),
          fired_(fired),
          pending_(pending),
          closed_(closed) {}
    void OnOpen(Connection& conn) override {
      // Cannot fall due during the test: only the close can remove it.
      conn.RunAfter(absl::Hours(1),
                    [this](Connection&) { fired_->store(true); });
    }
    void OnData(Connection& conn, absl::string_view) override { conn.Close(); }
    void OnClose(Connection&, const absl::Status&) override {
      pending_->store(ReactorTestPeer::PendingTimers(*reactor_));
      closed_->Notify();
    }
    Reactor* reactor_;
    std::atomic<bool>* fired_;
    std::atomic<size_t>* pending_;
    Notification* closed_;
  };
  auto port = reactor->Listen(ListenOptions{}, [&] {
    return std::make_unique<Handler>(r, &fired, &pending_at_close, &closed);
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(
      Eventually([&] { return ReactorTestPeer::PendingTimers(*r) == 1; }));
  ASSERT_TRUE(SendAll(fd, "x").ok());
  ASSERT_TRUE(closed.WaitFor(kBound));
  auto got = ReadToEof(fd);  // closed with nothing sent
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
  EXPECT_EQ(pending_at_close.load(), 0u);
  EXPECT_EQ(ReactorTestPeer::PendingTimers(*r), 0u);
  EXPECT_FALSE(fired.load());
  ::close(fd);
}

// A timer writes and closes; CancelTimer stops another for good.
TEST(ConnectionTimersTest, TimerWritesClosesAndCancels) {
  auto reactor = StartReactor(Threads(2));
  std::atomic<bool> cancelled_ran{false};
  std::atomic<bool> cancel_result{false};
  class Handler : public ConnectionHandler {
   public:
    Handler(std::atomic<bool>* ran, std::atomic<bool>* result)
        : ran_(ran), result_(result) {}
    void OnOpen(Connection& conn) override {
      const auto doomed = conn.RunAfter(
          absl::Milliseconds(1), [this](Connection&) { ran_->store(true); });
      result_->store(conn.CancelTimer(doomed));
      EXPECT_FALSE(conn.CancelTimer(doomed));  // only once
      conn.RunAfter(absl::Milliseconds(20), [](Connection& c) {
        c.Write("tick");
        c.Close();
      });
    }
    void OnData(Connection&, absl::string_view) override {}
    std::atomic<bool>* ran_;
    std::atomic<bool>* result_;
  };
  auto port = reactor->Listen(ListenOptions{}, [&] {
    return std::make_unique<Handler>(&cancelled_ran, &cancel_result);
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  auto got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "tick");
  EXPECT_TRUE(cancel_result.load());
  EXPECT_FALSE(cancelled_ran.load());
  ::close(fd);
}

// Many connections with timers, closed by their peers: every connection
// gets OnClose exactly once, no timer runs after it, and none is left in
// the timer queue, although each connection still had timers pending when
// it closed (one an hour away, two due at once, made in OnPeerClosed right
// before the close).
TEST(ConnectionTimersTest, NoneFireAfterOnCloseAcrossManyConnections) {
  g_violations = 0;
  g_timer_runs = 0;
  g_closes = 0;
  auto reactor = StartReactor(Threads(4));
  auto port =
      reactor->Listen(ListenOptions{}, [] { return std::make_unique<Busy>(); });
  ASSERT_TRUE(port.ok());
  constexpr int kConnections = 200;
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ConnectLoopback(*port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "ping").ok());
    auto echo = ReadExact(fd, 4);
    ASSERT_TRUE(echo.ok()) << echo.status();
    ASSERT_EQ(*echo, "ping");
    fds.push_back(fd);
  }
  for (int fd : fds) ::shutdown(fd, SHUT_WR);
  for (int fd : fds) {
    auto rest = ReadToEof(fd);  // the server's close after our EOF
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_EQ(*rest, "");
    ::close(fd);
  }
  ASSERT_TRUE(Eventually([&] { return g_closes.load() == kConnections; }));
  // Every connection timer was cancelled with its connection.
  EXPECT_EQ(ReactorTestPeer::PendingTimers(*reactor), 0u);
  // A batch of the timer queue after the closes: any timer queue entry
  // that fell due before it (and was not cancelled) has been served.
  Notification later;
  reactor->RunAfter(absl::ZeroDuration(), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(kBound));
  reactor->Stop();
  reactor->Wait();
  EXPECT_EQ(g_violations.load(), 0);
}

// Connection timers that fall due together are queued for any free
// thread, not run one after another on the thread that took the timer
// queue's wake-up: each callback here waits until all have started, which
// they can only do if they run at the same time.
TEST(ConnectionTimersTest, TimersDueTogetherRunOnSeveralThreadsAtOnce) {
  constexpr int kConnections = 3;
  Counter registered, started, together, finished;
  Notification holding;
  // One thread held in the reactor timer below, one leader, and one per
  // connection timer.
  auto reactor = StartReactor(Threads(kConnections + 2));
  // While a batch of the timer queue runs, its descriptor is disarmed and
  // no other batch starts. Holding this one until every connection has made
  // its timer (due at once) puts all of them in the next batch.
  reactor->RunAfter(absl::ZeroDuration(), [&] {
    holding.Notify();
    EXPECT_TRUE(registered.WaitFor(kConnections, kBound));
  });
  ASSERT_TRUE(holding.WaitFor(kBound));
  struct Shared {
    Counter* registered;
    Counter* started;
    Counter* together;
    Counter* finished;
  } shared{&registered, &started, &together, &finished};
  class Handler : public ConnectionHandler {
   public:
    explicit Handler(Shared* shared) : shared_(shared) {}
    void OnOpen(Connection& conn) override {
      conn.RunAfter(absl::ZeroDuration(), [this](Connection& c) {
        shared_->started->Increment();
        if (shared_->started->WaitFor(kConnections, kBound)) {
          shared_->together->Increment();
        } else {
          shared_->started->GiveUp();  // the others need not wait too
        }
        c.Write("t");
        shared_->finished->Increment();
      });
      shared_->registered->Increment();
    }
    void OnData(Connection&, absl::string_view) override {}
    Shared* shared_;
  };
  auto port = reactor->Listen(
      ListenOptions{}, [&] { return std::make_unique<Handler>(&shared); });
  ASSERT_TRUE(port.ok());
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ConnectLoopback(*port);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  ASSERT_TRUE(finished.WaitFor(kConnections, 3 * kBound));
  EXPECT_EQ(together.value(), kConnections);
  for (int fd : fds) {
    auto got = ReadExact(fd, 1);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "t");
    ::close(fd);
  }
}

// An infinite (or too long for the clock) delay never falls due: a timer
// made later with no delay runs, and the infinite ones have not.
TEST(ConnectionTimersTest, InfiniteDelayNeverRuns) {
  auto reactor = StartReactor(Threads(2));
  std::atomic<int> never_ran{0};
  class Handler : public ConnectionHandler {
   public:
    explicit Handler(std::atomic<int>* never_ran) : never_ran_(never_ran) {}
    void OnOpen(Connection& conn) override {
      for (absl::Duration delay :
           {absl::InfiniteDuration(), absl::Hours(3e6)}) {
        EXPECT_NE(conn.RunAfter(delay,
                                [this](Connection& c) {
                                  never_ran_->fetch_add(1);
                                  c.Write("never");
                                }),
                  0u);
      }
      conn.RunAfter(absl::ZeroDuration(), [](Connection& c) {
        c.Write("now");
        c.Close();
      });
    }
    void OnData(Connection&, absl::string_view) override {}
    std::atomic<int>* never_ran_;
  };
  auto port = reactor->Listen(
      ListenOptions{}, [&] { return std::make_unique<Handler>(&never_ran); });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  auto got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "now");
  EXPECT_EQ(never_ran.load(), 0);
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return reactor->connection_count() == 0; }));
  EXPECT_EQ(ReactorTestPeer::PendingTimers(*reactor), 0u);
}

// Reactor::CancelTimer knows only Reactor::RunAfter / RunEvery ids: given
// a connection timer's id it returns false, and that timer still runs.
TEST(ConnectionTimersTest, ReactorCancelTimerDoesNotReachAConnectionTimer) {
  auto reactor = StartReactor(Threads(2));
  std::atomic<int> cancelled{-1};
  class Handler : public ConnectionHandler {
   public:
    explicit Handler(std::atomic<int>* cancelled) : cancelled_(cancelled) {}
    void OnOpen(Connection& conn) override {
      const Connection::TimerId id =
          conn.RunAfter(absl::Milliseconds(200), [](Connection& c) {
            c.Write("ran");
            c.Close();
          });
      ASSERT_NE(id, 0u);
      cancelled_->store(conn.reactor().CancelTimer(id) ? 1 : 0);
    }
    void OnData(Connection&, absl::string_view) override {}
    std::atomic<int>* cancelled_;
  };
  auto port = reactor->Listen(
      ListenOptions{}, [&] { return std::make_unique<Handler>(&cancelled); });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port, /*timeout_ms=*/20000);
  ASSERT_GE(fd, 0);
  auto got = ReadToEof(fd);
  EXPECT_EQ(cancelled.load(), 0);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ran");
  ::close(fd);
}

// And the other way round: Connection::CancelTimer given a reactor timer's
// id returns false, and the reactor timer still runs.
TEST(ConnectionTimersTest, ConnectionCancelTimerDoesNotReachAReactorTimer) {
  auto reactor = StartReactor(Threads(2));
  Notification ran;
  const TimerId reactor_timer =
      reactor->RunAfter(absl::Milliseconds(200), [&] { ran.Notify(); });
  ASSERT_NE(reactor_timer, 0u);
  std::atomic<int> cancelled{-1};
  auto port = reactor->Listen(ListenOptions{}, [&] {
    auto h = std::make_unique<testing::RecordingHandler>(
        std::make_shared<testing::Record>());
    h->on_open = [&](Connection& conn) {
      cancelled.store(conn.CancelTimer(reactor_timer) ? 1 : 0);
      conn.Write("opened");
      conn.Close();
    };
    return h;
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  auto got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "opened");
  EXPECT_EQ(cancelled.load(), 0);
  EXPECT_TRUE(ran.WaitFor(kBound));
  ::close(fd);
}

}  // namespace
}  // namespace baton
