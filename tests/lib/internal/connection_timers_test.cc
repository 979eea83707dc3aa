// Per-connection timers (Connection::RunAfter, lib/internal/
// connection_timers.cc): they run under the connection's claim, never
// concurrently with its other callbacks (also checked by ThreadSanitizer:
// the handler's state is plain, unsynchronised memory), are cancelled when
// the connection closes, and never run after OnClose. Ordering is checked
// against reactor timers with later deadlines, never against wall time.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "baton/reactor.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::Eventually;
using ::baton::testing::Notification;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::StartReactor;
using ::baton::testing::Threads;

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
      conn.RunAfter(absl::Microseconds(100 * i), [this](Connection& c) {
        Enter();
        ++ticks_;
        g_timer_runs.fetch_add(1);
        if (closed_) g_violations.fetch_add(1);
        Leave();
      });
    }
    Leave();
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
  auto port = reactor->Listen(ListenOptions{},
                              [] { return std::make_unique<Busy>(); });
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

// A timer scheduled far enough out that the connection closes first never
// runs: a reactor timer with a later deadline runs, and by then the
// connection's has not.
TEST(ConnectionTimersTest, CancelledWhenTheConnectionCloses) {
  auto reactor = StartReactor(Threads(2));
  std::atomic<bool> fired{false};
  Notification closed;
  class Handler : public ConnectionHandler {
   public:
    Handler(std::atomic<bool>* fired, Notification* closed)
        : fired_(fired), closed_(closed) {}
    void OnOpen(Connection& conn) override {
      conn.RunAfter(absl::Milliseconds(50),
                    [this](Connection&) { fired_->store(true); });
    }
    void OnData(Connection& conn, absl::string_view) override {
      conn.Close();
    }
    void OnClose(Connection&, const absl::Status&) override {
      closed_->Notify();
    }
    std::atomic<bool>* fired_;
    Notification* closed_;
  };
  auto port = reactor->Listen(ListenOptions{}, [&] {
    return std::make_unique<Handler>(&fired, &closed);
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "x").ok());
  ASSERT_TRUE(closed.WaitFor(std::chrono::seconds(20)));
  // Possibly already past 50 ms on a slow machine: then this run proves
  // nothing about cancellation, but the rest of the test still holds.
  Notification later;
  reactor->RunAfter(absl::Milliseconds(150), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(std::chrono::seconds(20)));
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

// Many connections with one timer each, closed in the middle: every
// connection gets OnClose exactly once and no timer runs after it.
TEST(ConnectionTimersTest, NoneFireAfterOnCloseAcrossManyConnections) {
  g_violations = 0;
  g_timer_runs = 0;
  g_closes = 0;
  auto reactor = StartReactor(Threads(4));
  auto port = reactor->Listen(ListenOptions{},
                              [] { return std::make_unique<Busy>(); });
  ASSERT_TRUE(port.ok());
  constexpr int kConnections = 200;
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ConnectLoopback(*port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "ping").ok());
    fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(Eventually([&] { return g_closes.load() == kConnections; }));
  Notification later;
  reactor->RunAfter(absl::Milliseconds(5), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(std::chrono::seconds(20)));
  reactor->Stop();
  reactor->Wait();
  EXPECT_EQ(g_violations.load(), 0);
}

}  // namespace
}  // namespace baton
