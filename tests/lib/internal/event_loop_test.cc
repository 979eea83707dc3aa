// Tests for the worker loop (lib/internal/event_loop.cc) through a real
// Reactor on loopback: events one epoll_wait returned together are shared
// between threads, so a handler that blocks cannot hold the others back;
// posted tasks and timers run on reactor threads; timer deadlines saturate
// (an infinite delay means never) and Reactor::CancelTimer reaches only
// Reactor::RunAfter / RunEvery timers.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "baton/connection.h"
#include "baton/reactor.h"
#include "tests/lib/reactor_fixture.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoFactory;
using ::baton::testing::Notification;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;

// What the two connections share: which reply each client has received,
// and what the first handler to run saw.
struct Rendezvous {
  std::atomic<bool> first_taken{false};
  Notification replied[2];  // client 'A' / 'B' has read its echo
  std::atomic<bool> waited_in_vain{false};
  std::mutex mu;
  std::vector<int> server_fds;  // for the readiness check
};

// Echoes; the first handler to run blocks until the *other* client has
// received its echo, which only another thread can produce.
class BlockingEcho : public ConnectionHandler {
 public:
  explicit BlockingEcho(Rendezvous* r) : r_(r) {}
  void OnOpen(Connection& conn) override {
    std::lock_guard<std::mutex> lock(r_->mu);
    r_->server_fds.push_back(conn.fd());
  }
  void OnData(Connection& conn, absl::string_view data) override {
    const int me = data[0] == 'A' ? 0 : 1;
    if (!r_->first_taken.exchange(true)) {
      if (!r_->replied[1 - me].WaitFor(std::chrono::seconds(5))) {
        r_->waited_in_vain = true;
      }
    }
    conn.Write(data);
  }

 private:
  Rendezvous* r_;
};

// Waits (bounded) until every fd is readable.
bool AllReadable(const std::vector<int>& fds) {
  std::vector<pollfd> p;
  for (int fd : fds) p.push_back({fd, POLLIN, 0});
  for (int i = 0; i < 1000; ++i) {
    for (auto& e : p) e.revents = 0;
    if (::poll(p.data(), p.size(), 10) < 0) return false;
    bool all = true;
    for (const auto& e : p) all = all && (e.revents & POLLIN);
    if (all) return true;
  }
  return false;
}

TEST(EventLoopTest, AHandlerThatBlocksDoesNotHoldBackEventsTakenWithIt) {
  Rendezvous r;
  ReactorOptions options;
  options.threads = 2;
  auto created = Reactor::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  Reactor& reactor = **created;
  auto port = reactor.Listen(
      ListenOptions{}, [&r] { return std::make_unique<BlockingEcho>(&r); });
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(reactor.Start().ok());

  const int a = ConnectLoopback(*port);
  const int b = ConnectLoopback(*port);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int i = 0; i < 1000 && reactor.connection_count() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(reactor.connection_count(), 2u);
  std::vector<int> fds;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    fds = r.server_fds;
  }
  ASSERT_EQ(fds.size(), 2u);

  // Nobody polls while both clients send, so the next epoll_wait returns
  // both events at once: one batch, taken by one thread.
  internal::ReactorTestPeer::HoldPolling(reactor);
  const uint64_t handed_before = reactor.Counters().handed_off;
  ASSERT_TRUE(SendAll(a, "A").ok());
  ASSERT_TRUE(SendAll(b, "B").ok());
  ASSERT_TRUE(AllReadable(fds));
  internal::ReactorTestPeer::ResumePolling(reactor);

  std::string got[2];
  std::thread reader_b([&] {
    auto echo = ReadExact(b, 1);
    if (echo.ok()) got[1] = *echo;
    r.replied[1].Notify();
  });
  auto echo_a = ReadExact(a, 1);
  if (echo_a.ok()) got[0] = *echo_a;
  r.replied[0].Notify();
  reader_b.join();

  EXPECT_EQ(got[0], "A");
  EXPECT_EQ(got[1], "B");
  EXPECT_FALSE(r.waited_in_vain)
      << "the second event of the batch waited behind the blocked handler";
  EXPECT_GE(reactor.Counters().handed_off, handed_before + 1)
      << "both events should have come from one epoll_wait";
  ::close(a);
  ::close(b);
  reactor.Stop();
  reactor.Wait();
}

TEST(ReactorTest, PostAndTimersRunOnReactorThreads) {
  Server s = StartServer(Threads(2), EchoFactory());
  baton::testing::Notification posted, fired, repeated;
  std::atomic<bool> on_reactor{true};
  std::atomic<int> ticks{0};
  ASSERT_TRUE(s.reactor->Post([&] {
    on_reactor = on_reactor && s.reactor->InReactorThread();
    posted.Notify();
  }));
  bool cancelled_ran = false;
  const TimerId cancelled =
      s.reactor->RunAfter(absl::Hours(1), [&] { cancelled_ran = true; });
  EXPECT_TRUE(s.reactor->CancelTimer(cancelled));
  s.reactor->RunAfter(absl::Milliseconds(20), [&] {
    on_reactor = on_reactor && s.reactor->InReactorThread();
    fired.Notify();
  });
  TimerId every = s.reactor->RunEvery(absl::Milliseconds(5), [&] {
    if (ticks.fetch_add(1) + 1 == 3) repeated.Notify();
  });
  EXPECT_TRUE(posted.WaitFor(std::chrono::seconds(10)));
  EXPECT_TRUE(fired.WaitFor(std::chrono::seconds(10)));
  EXPECT_TRUE(repeated.WaitFor(std::chrono::seconds(10)));
  s.reactor->CancelTimer(every);
  EXPECT_TRUE(on_reactor);
  EXPECT_FALSE(s.reactor->InReactorThread());
  s.reactor->Stop();
  s.reactor->Wait();
  EXPECT_FALSE(cancelled_ran);
  EXPECT_FALSE(s.reactor->Post([] {}));
}

// An infinite delay, or one too long for the clock, never falls due: a
// timer with a negative delay (due at once) runs, and they have not, and
// can still be cancelled.
TEST(ReactorTest, InfiniteTimerDelayMeansNever) {
  std::atomic<int> never_ran{0};
  Notification now;
  Server s = StartServer(Threads(2), EchoFactory());
  const TimerId infinite = s.reactor->RunAfter(absl::InfiniteDuration(),
                                               [&] { never_ran.fetch_add(1); });
  const TimerId huge =
      s.reactor->RunAfter(absl::Hours(3e6), [&] { never_ran.fetch_add(1); });
  ASSERT_NE(infinite, 0u);
  ASSERT_NE(huge, 0u);
  ASSERT_NE(s.reactor->RunAfter(-absl::Seconds(1), [&] { now.Notify(); }), 0u);
  ASSERT_TRUE(now.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(never_ran.load(), 0);
  EXPECT_TRUE(s.reactor->CancelTimer(infinite));
  EXPECT_TRUE(s.reactor->CancelTimer(huge));
  s.reactor->Stop();
  s.reactor->Wait();
  EXPECT_EQ(never_ran.load(), 0);
}

// RunEvery refuses a period that is not positive and finite (0, and the
// callback never runs); a finite period too long for the clock is accepted
// and never falls due.
TEST(ReactorTest, RunEveryNeedsAPositiveFinitePeriod) {
  std::atomic<int> ran{0};
  Notification later;
  Server s = StartServer(Threads(2), EchoFactory());
  for (absl::Duration period :
       {absl::ZeroDuration(), -absl::Milliseconds(1), absl::InfiniteDuration(),
        -absl::InfiniteDuration()}) {
    EXPECT_EQ(s.reactor->RunEvery(period, [&] { ran.fetch_add(1); }), 0u)
        << period;
  }
  const TimerId huge =
      s.reactor->RunEvery(absl::Hours(3e6), [&] { ran.fetch_add(1); });
  EXPECT_NE(huge, 0u);
  s.reactor->RunAfter(absl::ZeroDuration(), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(ran.load(), 0);
  EXPECT_TRUE(s.reactor->CancelTimer(huge));
  s.reactor->Stop();
  s.reactor->Wait();
  EXPECT_EQ(ran.load(), 0);
}

// The reactor's own timers (here the idle sweep, its first) are out of
// Reactor::CancelTimer's reach although their ids come from the same
// counter: cancelling small ids returns false and the sweep still closes
// an idle connection.
TEST(ReactorTest, CancelTimerDoesNotReachTheReactorsOwnTimers) {
  ReactorOptions options = Threads(2);
  options.idle_timeout = absl::Milliseconds(100);
  Server s = StartServer(options, EchoFactory());
  for (TimerId id = 1; id <= 4; ++id) {
    EXPECT_FALSE(s.reactor->CancelTimer(id)) << id;
  }
  const int fd = ConnectLoopback(s.port, /*timeout_ms=*/20000);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "ping").ok());
  auto got = ReadToEof(fd);  // the echo, then the idle sweep's close
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  ::close(fd);
  EXPECT_GE(s.reactor->Counters().idle_timeouts, 1u);
}

}  // namespace
}  // namespace baton
