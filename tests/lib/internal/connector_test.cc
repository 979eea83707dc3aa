// Reactor::Connect (lib/internal/connector.cc) on loopback: success over
// IPv4 and IPv6, refusal, retries with back-off, a timeout against a
// listener whose backlog is full, an infinite timeout or back-off (no
// deadline at all), cancellation by Close, Drain and Stop (no attempt
// starts after them), a connect made from inside a handler, and bytes
// written before the connection is up.
// Each failure must reach the handler as OnClose (no OnOpen) with a clear
// status, and leave no descriptor behind.
//
// Each test declares its Record before its reactor, so the reactor's
// threads are joined before the Record (and the status it keeps) is
// destroyed: the last reference to a status is never dropped on a reactor
// thread, a hand-over ThreadSanitizer cannot follow through Debian's
// uninstrumented absl (it reports the delete as racing the test's copy).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "baton/reactor.h"
#include "tests/lib/internal/ipv6_loopback.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::internal::ReactorTestPeer;
using ::baton::testing::BoundNotListening;
using ::baton::testing::Counter;
using ::baton::testing::Eventually;
using ::baton::testing::OpenFdCount;
using ::baton::testing::Record;
using ::baton::testing::RecordingFactory;
using ::baton::testing::RecordingHandler;
using ::baton::testing::StartReactor;
using ::baton::testing::Threads;

constexpr std::chrono::seconds kBound{20};  // only limits a hang

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

// An echo server on its own reactor.
struct EchoServer {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
  explicit EchoServer(const std::string& address = "127.0.0.1") {
    reactor = StartReactor(Threads(2));
    ListenOptions listen;
    listen.address = address;
    auto p = reactor->Listen(listen, [] { return std::make_unique<Echo>(); });
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) port = *p;
  }
};

ConnectOptions To(int port, const std::string& address = "127.0.0.1") {
  ConnectOptions o;
  o.address = address;
  o.port = port;
  return o;
}

// Connects, says `message` in OnOpen and waits for it to come back.
void ExpectEchoThrough(const std::string& address) {
  if (address == "::1") {
    absl::StatusOr<bool> ipv6 = testing::HasIpv6Loopback();
    ASSERT_TRUE(ipv6.ok()) << ipv6.status();
    if (!*ipv6) GTEST_SKIP() << "no IPv6 loopback on this host";
  }
  EchoServer server(address);
  ASSERT_NE(server.port, 0) << "could not listen on " << address;
  auto record = std::make_shared<Record>();
  auto client = StartReactor(Threads(2));
  const std::string message = testing::Pattern(100000, 7);
  auto id = client->Connect(To(server.port, address), [&] {
    auto h = std::make_unique<RecordingHandler>(record);
    h->on_open = [&](Connection& conn) { conn.Write(message); };
    h->on_data = [&](Connection& conn, absl::string_view) {
      if (record->data.size() >= message.size()) conn.Close();
    };
    return h;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_TRUE(record->status().ok()) << record->status();
  EXPECT_TRUE(record->is_opened());
  EXPECT_EQ(record->id, *id);
  EXPECT_TRUE(record->received() == message);
  EXPECT_EQ(client->Counters().connect_attempts, 1u);
}

TEST(ConnectorTest, ConnectsOverIpv4) { ExpectEchoThrough("127.0.0.1"); }
TEST(ConnectorTest, ConnectsOverIpv6) { ExpectEchoThrough("::1"); }

TEST(ConnectorTest, RejectsBadOptions) {
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(1));
  ConnectOptions o = To(0);
  EXPECT_EQ(reactor->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = To(80, "not a host name");  // a literal or a host name only
  EXPECT_EQ(reactor->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = To(80);
  o.timeout = absl::ZeroDuration();
  EXPECT_EQ(reactor->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = To(80);
  o.max_attempts = 0;
  EXPECT_EQ(reactor->Connect(o, RecordingFactory(record)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reactor->Connect(To(80), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reactor->connection_count(), 0u);
}

TEST(ConnectorTest, RefusedReachesOnCloseWithoutOnOpen) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  const int fds_before = OpenFdCount();
  ASSERT_TRUE(reactor->Connect(To(port), RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kUnavailable)
      << record->status();
  EXPECT_NE(record->status().message().find("refused"), std::string::npos)
      << record->status();
  EXPECT_TRUE(Eventually([&] { return reactor->connection_count() == 0; }));
  EXPECT_EQ(OpenFdCount(), fds_before);
  EXPECT_EQ(reactor->Counters().connect_failures, 1u);
  ::close(reserved);
}

TEST(ConnectorTest, RetriesWithBackoffThenGivesUp) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  const int fds_before = OpenFdCount();
  ConnectOptions o = To(port);
  o.max_attempts = 4;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(4);
  ASSERT_TRUE(reactor->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(record->status().message().find("4 attempts"), std::string::npos)
      << record->status();
  EXPECT_EQ(reactor->Counters().connect_attempts, 4u);
  EXPECT_TRUE(Eventually([&] { return OpenFdCount() == fds_before; }));
  ::close(reserved);
}

// Refused until the port starts listening, then connected on a retry.
TEST(ConnectorTest, RetrySucceedsOnceThePeerListens) {
  int port = 0;
  const int listener = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  ConnectOptions o = To(port);
  o.max_attempts = 1000;
  o.initial_backoff = absl::Milliseconds(2);
  o.max_backoff = absl::Milliseconds(10);
  auto id = reactor->Connect(o, [&] {
    auto h = std::make_unique<RecordingHandler>(record);
    h->on_open = [](Connection& conn) { conn.Write("hi"); };
    return h;
  });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(
      Eventually([&] { return reactor->Counters().connect_attempts >= 2; }));
  ASSERT_EQ(::listen(listener, 8), 0);
  const int accepted = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  char buf[2];
  ASSERT_EQ(::recv(accepted, buf, 2, MSG_WAITALL), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  EXPECT_TRUE(record->is_opened());
  ::close(accepted);  // the peer's EOF closes it (default OnPeerClosed)
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_TRUE(record->status().ok()) << record->status();
  ::close(listener);
}

// A listener with backlog 0 that never accepts: once its queue is full the
// kernel drops further SYNs, so a connect hangs until its timeout.
struct FullListener {
  int fd = -1;
  int port = 0;
  std::vector<int> fillers;
  FullListener() {
    fd = BoundNotListening(&port);
    EXPECT_EQ(::listen(fd, 0), 0);
    for (int i = 0; i < 16; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(port);
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers.push_back(c);
      pollfd p = {c, POLLOUT, 0};
      if (::poll(&p, 1, 300) == 0) return;  // this one hangs: queue full
    }
    ADD_FAILURE() << "could not fill the listener's backlog";
  }
  ~FullListener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
};

TEST(ConnectorTest, TimesOutAgainstAFullBacklog) {
  FullListener full;
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  const int fds_before = OpenFdCount();
  ConnectOptions o = To(full.port);
  o.timeout = absl::Milliseconds(100);
  ASSERT_TRUE(reactor->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kDeadlineExceeded)
      << record->status();
  EXPECT_NE(record->status().message().find("timed out"), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return OpenFdCount() == fds_before; }));
}

TEST(ConnectorTest, StopCancelsAConnectInProgress) {
  FullListener full;
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  ConnectOptions o = To(full.port);
  o.timeout = absl::Seconds(600);
  ASSERT_TRUE(reactor->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(
      Eventually([&] { return reactor->Counters().connect_attempts == 1; }));
  reactor->Stop();
  reactor->Wait();
  ASSERT_TRUE(record->done.HasBeenNotified());
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  // And once stopped, Connect refuses without making a handler.
  EXPECT_EQ(
      reactor->Connect(To(full.port), RecordingFactory(record)).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST(ConnectorTest, CloseCancelsAConnectInProgress) {
  FullListener full;
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  const int fds_before = OpenFdCount();
  ConnectOptions o = To(full.port);
  o.timeout = absl::Seconds(600);
  auto id = reactor->Connect(o, RecordingFactory(record));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(
      Eventually([&] { return reactor->Counters().connect_attempts == 1; }));
  EXPECT_TRUE(reactor->Close(*id));
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Eventually([&] { return OpenFdCount() == fds_before; }));
  EXPECT_FALSE(reactor->Close(*id));  // stale now
}

// An infinite timeout, or one too long for the clock (a proxy's
// --connect_timeout_ms of INT64_MAX), means no deadline: the attempt
// against a full backlog waits (no timer queue entry is armed for it)
// until it is closed.
void ExpectNoDeadline(absl::Duration timeout) {
  FullListener full;
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  ConnectOptions o = To(full.port);
  o.timeout = timeout;
  auto id = reactor->Connect(o, RecordingFactory(record));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(
      Eventually([&] { return reactor->Counters().connect_attempts == 1; }));
  // A timer queue batch after the attempt began: a deadline armed by the
  // attempt would have been due before this one.
  testing::Notification later;
  reactor->RunAfter(absl::ZeroDuration(), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(kBound));
  EXPECT_FALSE(record->done.HasBeenNotified()) << record->status();
  EXPECT_EQ(ReactorTestPeer::PendingTimers(*reactor), 0u);
  EXPECT_TRUE(reactor->Close(*id));
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  EXPECT_NE(record->status().message().find("closed while connecting"),
            std::string::npos)
      << record->status();
  EXPECT_EQ(reactor->Counters().connect_attempts, 1u);
}

TEST(ConnectorTest, InfiniteTimeoutNeverTimesOut) {
  ExpectNoDeadline(absl::InfiniteDuration());
}

TEST(ConnectorTest, TimeoutTooLongForTheClockNeverTimesOut) {
  ExpectNoDeadline(absl::Milliseconds(std::numeric_limits<int64_t>::max()));
}

// An infinite back-off never ends: after the first refusal the connection
// waits (its one timer queue entry never falls due) until it is closed.
TEST(ConnectorTest, InfiniteBackoffWaitsUntilClosed) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  ConnectOptions o = To(port);
  o.timeout = absl::InfiniteDuration();  // no entry for the attempt itself
  o.max_attempts = 2;
  o.initial_backoff = absl::InfiniteDuration();
  o.max_backoff = absl::InfiniteDuration();
  auto id = reactor->Connect(o, RecordingFactory(record));
  ASSERT_TRUE(id.ok()) << id.status();
  // Refused, and waiting out the back-off.
  ASSERT_TRUE(Eventually(
      [&] { return ReactorTestPeer::PendingTimers(*reactor) == 1; }));
  testing::Notification later;
  reactor->RunAfter(absl::ZeroDuration(), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitFor(kBound));
  EXPECT_FALSE(record->done.HasBeenNotified()) << record->status();
  EXPECT_TRUE(reactor->Close(*id));
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  EXPECT_EQ(reactor->Counters().connect_attempts, 1u);
  EXPECT_EQ(ReactorTestPeer::PendingTimers(*reactor), 0u);
  ::close(reserved);
}

// A back-off that ends after Stop starts no new attempt. The back-off ends
// in the same timer queue batch as a reactor timer that calls Stop and is
// due just before it: a reactor timer holds the queue's batch until the
// first attempt has been refused and the back-off (none: due at once) is
// waiting, so both fall due in the next batch.
TEST(ConnectorTest, BackoffEndingAfterStopStartsNoAttempt) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  testing::Notification holding, stopped;
  std::atomic<bool> backoff_seen{false};
  auto reactor = StartReactor(Threads(2));
  Reactor* r = reactor.get();
  reactor->RunAfter(absl::ZeroDuration(), [&] {
    r->RunAfter(absl::ZeroDuration(), [&] {
      r->Stop();
      stopped.Notify();
    });
    holding.Notify();
    // The Stop timer above, and the back-off once the attempt is refused.
    backoff_seen = Eventually(
        [&] { return ReactorTestPeer::PendingTimers(*r) == 2; }, 20000);
  });
  ASSERT_TRUE(holding.WaitFor(kBound));
  ConnectOptions o = To(port);
  o.timeout = absl::InfiniteDuration();  // no entry for the attempt itself
  o.max_attempts = 2;
  o.initial_backoff = absl::ZeroDuration();
  o.max_backoff = absl::ZeroDuration();
  ASSERT_TRUE(reactor->Connect(o, RecordingFactory(record)).ok());
  ASSERT_TRUE(stopped.WaitFor(kBound));
  reactor->Wait();
  EXPECT_TRUE(backoff_seen.load());
  ASSERT_TRUE(record->done.HasBeenNotified());
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  EXPECT_EQ(reactor->Counters().connect_attempts, 1u);
  ::close(reserved);
}

// Connect deadlines that fall due together are queued for any free thread,
// not served one after another on the thread that took the timer queue's
// wake-up: each OnClose (DEADLINE_EXCEEDED) here waits until all have
// started, which they can only do if they run at the same time.
TEST(ConnectorTest, DeadlinesDueTogetherAreServedOnSeveralThreadsAtOnce) {
  constexpr int kConnects = 3;
  FullListener full;
  Counter started, together, finished;
  testing::Notification holding;
  std::atomic<bool> all_armed{false};
  // One thread held in the reactor timer below, one leader, and one per
  // connection.
  auto reactor = StartReactor(Threads(kConnects + 2));
  Reactor* r = reactor.get();
  // While a batch of the timer queue runs, its descriptor is disarmed and
  // no other batch starts. Holding this one until every attempt has armed
  // its deadline (due almost at once) puts all of them in the next batch.
  reactor->RunAfter(absl::ZeroDuration(), [&] {
    holding.Notify();
    all_armed = Eventually(
        [&] { return ReactorTestPeer::PendingTimers(*r) == kConnects; }, 20000);
  });
  ASSERT_TRUE(holding.WaitFor(kBound));
  class Handler : public ConnectionHandler {
   public:
    Handler(Counter* started, Counter* together, Counter* finished)
        : started_(started), together_(together), finished_(finished) {}
    void OnOpen(Connection&) override { ADD_FAILURE() << "connected"; }
    void OnData(Connection&, absl::string_view) override {}
    void OnClose(Connection&, const absl::Status& reason) override {
      EXPECT_EQ(reason.code(), absl::StatusCode::kDeadlineExceeded);
      started_->Increment();
      if (started_->WaitFor(kConnects, kBound)) {
        together_->Increment();
      } else {
        started_->GiveUp();  // the others need not wait too
      }
      finished_->Increment();
    }
    Counter* started_;
    Counter* together_;
    Counter* finished_;
  };
  ConnectOptions o = To(full.port);
  o.timeout = absl::Nanoseconds(1);
  for (int i = 0; i < kConnects; ++i) {
    ASSERT_TRUE(reactor
                    ->Connect(o,
                              [&] {
                                return std::make_unique<Handler>(
                                    &started, &together, &finished);
                              })
                    .ok());
  }
  ASSERT_TRUE(finished.WaitFor(kConnects, 3 * kBound));
  EXPECT_TRUE(all_armed.load());
  EXPECT_EQ(together.value(), kConnects);
  reactor->Stop();
  reactor->Wait();
}

// A Drain that comes before the first attempt starts (here from the
// handler factory, which runs just before it) means no attempt at all:
// OnClose(CANCELLED) and no socket.
TEST(ConnectorTest, DrainBeforeTheFirstAttemptStartsNoSocket) {
  int port = 0;
  const int reserved = BoundNotListening(&port);
  auto record = std::make_shared<Record>();
  auto reactor = StartReactor(Threads(2));
  Reactor* r = reactor.get();
  ASSERT_TRUE(reactor
                  ->Connect(To(port),
                            [&] {
                              r->Drain();
                              return std::make_unique<RecordingHandler>(record);
                            })
                  .ok());
  ASSERT_TRUE(record->done.WaitFor(kBound));
  EXPECT_FALSE(record->is_opened());
  EXPECT_EQ(record->status().code(), absl::StatusCode::kCancelled)
      << record->status();
  EXPECT_NE(record->status().message().find("draining"), std::string::npos)
      << record->status();
  EXPECT_EQ(reactor->Counters().connect_attempts, 0u);
  ::close(reserved);
}

// Bytes written by id before the connection is up are sent once it is.
TEST(ConnectorTest, WritesBeforeConnectedAreSent) {
  EchoServer server;
  auto record = std::make_shared<Record>();
  auto client = StartReactor(Threads(2));
  const std::string message = testing::Pattern(300000, 3);
  auto id = client->Connect(To(server.port), RecordingFactory(record));
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(client->Write(*id, message));
  ASSERT_TRUE(Eventually(
      [&] { return record->received().size() >= message.size(); }, 20000));
  EXPECT_TRUE(record->received() == message);
  EXPECT_TRUE(client->Close(*id));
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
}

// A handler connects out and relays: client -> A -> echo -> A -> client.
class Relay : public ConnectionHandler {
 public:
  explicit Relay(int echo_port) : echo_port_(echo_port) {}
  void OnOpen(Connection& conn) override {
    const ConnectionId self = conn.id();
    Reactor* reactor = &conn.reactor();
    auto upstream = reactor->Connect(To(echo_port_), [reactor, self] {
      class Back : public ConnectionHandler {
       public:
        Back(Reactor* r, ConnectionId to) : r_(r), to_(to) {}
        void OnData(Connection&, absl::string_view data) override {
          r_->Write(to_, data);
        }
        Reactor* r_;
        ConnectionId to_;
      };
      return std::make_unique<Back>(reactor, self);
    });
    ASSERT_TRUE(upstream.ok());
    upstream_ = *upstream;
  }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.reactor().Write(upstream_, data);
  }
  void OnClose(Connection& conn, const absl::Status&) override {
    conn.reactor().Close(upstream_);
  }

 private:
  int echo_port_;
  ConnectionId upstream_;
};

TEST(ConnectorTest, ConnectFromAHandler) {
  EchoServer server;
  auto relay = StartReactor(Threads(2));
  auto port = relay->Listen(
      ListenOptions{}, [&] { return std::make_unique<Relay>(server.port); });
  ASSERT_TRUE(port.ok());
  const int fd = testing::ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(testing::EchoRoundTrip(fd, testing::Pattern(500000, 5)).ok());
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return relay->connection_count() == 0; }));
}

}  // namespace
}  // namespace baton
