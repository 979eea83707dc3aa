// Tests for a connection's life (lib/internal/connection_lifetime.cc):
// half-close, closing and lingering, abort, the idle and write timeouts, and
// stale ids and events after the slot and fd are reused, through the public
// Reactor API on loopback with real sockets.
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "baton/connection.h"
#include "baton/reactor.h"
#include "tests/lib/reactor_fixture.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::EchoFactory;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::End;
using ::baton::testing::EndName;
using ::baton::testing::EofOrReset;
using ::baton::testing::Eventually;
using ::baton::testing::Flood;
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::Registering;
using ::baton::testing::SendAll;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;
using ::baton::testing::WaitForEnd;

// The peer sends, shuts down its side, and still gets every byte, then EOF.
TEST(ReactorTest, HalfCloseFlushesEverythingThenCloses) {
  Server s = StartServer(Threads(2), EchoFactory());
  const std::string payload = Pattern(3 << 20, 9);
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  std::thread writer([&] {
    EXPECT_TRUE(SendAll(fd, payload).ok());
    ::shutdown(fd, SHUT_WR);
  });
  absl::StatusOr<std::string> got = ReadToEof(fd);
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), payload.size());
  EXPECT_TRUE(*got == payload);
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
}

// A connection closed and replaced (same fd number, same slot) must not
// receive anything addressed to the old one.
TEST(ReactorTest, StaleIdAfterFdReuseIsRejected) {
  ReactorOptions o = Threads(2);
  o.max_connections = 1;  // forces the same slot to be reused
  std::mutex mu;
  std::vector<std::pair<ConnectionId, int>> opened;  // id, server-side fd
  Server s = StartServer(o, [&] {
    return std::make_unique<Registering>([&](ConnectionId id) {
      std::lock_guard<std::mutex> lock(mu);
      opened.emplace_back(id, -1);
    });
  });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return opened.size();
  };
  const int first = ConnectLoopback(s.port);
  ASSERT_TRUE(Eventually([&] { return count() == 1; }));
  ConnectionId old_id;
  {
    std::lock_guard<std::mutex> lock(mu);
    old_id = opened[0].first;
  }
  ::close(first);
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));

  const int second = ConnectLoopback(s.port);
  ASSERT_TRUE(Eventually([&] { return count() == 2; }));
  ConnectionId new_id;
  {
    std::lock_guard<std::mutex> lock(mu);
    new_id = opened[1].first;
  }
  EXPECT_EQ(old_id.value & 0xffffffffu, new_id.value & 0xffffffffu)
      << "expected the slot to be reused";
  EXPECT_NE(old_id, new_id);
  EXPECT_FALSE(s.reactor->Write(old_id, "stale"));
  EXPECT_FALSE(s.reactor->Close(old_id));
  EXPECT_FALSE(s.reactor->Abort(old_id));
  ASSERT_TRUE(s.reactor->Write(new_id, "fresh"));
  absl::StatusOr<std::string> got = ReadExact(second, 5);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "fresh");
  EXPECT_EQ(s.reactor->connection_count(), 1u);
  ::close(second);
}

// The event-level version: an epoll event armed for a connection that has
// since been closed, delivered after a new connection took the same slot
// (and, the kernel being what it is, the same fd number), is dropped as
// stale: it neither claims nor serves the new connection.
TEST(ReactorTest, StaleEventAfterFdReuseIsDropped) {
  ReactorOptions o = Threads(2);
  o.max_connections = 1;
  std::mutex mu;
  std::vector<std::pair<ConnectionId, int>> opened;  // id, server-side fd
  class RecordFd : public ConnectionHandler {
   public:
    RecordFd(std::mutex* mu, std::vector<std::pair<ConnectionId, int>>* out)
        : mu_(mu), out_(out) {}
    void OnOpen(Connection& conn) override {
      std::lock_guard<std::mutex> lock(*mu_);
      out_->emplace_back(conn.id(), conn.fd());
    }
    void OnData(Connection& conn, absl::string_view data) override {
      conn.Write(data);
    }

   private:
    std::mutex* mu_;
    std::vector<std::pair<ConnectionId, int>>* out_;
  };
  Server s =
      StartServer(o, [&] { return std::make_unique<RecordFd>(&mu, &opened); });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return opened.size();
  };
  const int first = ConnectLoopback(s.port);
  ASSERT_TRUE(Eventually([&] { return count() == 1; }));
  ::close(first);
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  const int second = ConnectLoopback(s.port);
  ASSERT_TRUE(Eventually([&] { return count() == 2; }));
  std::pair<ConnectionId, int> old_conn, new_conn;
  {
    std::lock_guard<std::mutex> lock(mu);
    old_conn = opened[0];
    new_conn = opened[1];
  }
  ASSERT_EQ(old_conn.second, new_conn.second) << "fd number not reused";
  ASSERT_EQ(old_conn.first.value & 0xffffffffu,
            new_conn.first.value & 0xffffffffu);

  // Data is waiting on the new connection, so a wrongly accepted stale event
  // would have something to serve.
  ASSERT_TRUE(SendAll(second, "ping").ok());
  const uint64_t stale_before = s.reactor->Counters().stale_events;
  baton::testing::Notification injected;
  ASSERT_TRUE(s.reactor->Post([&] {
    internal::ReactorTestPeer::InjectEvent(*s.reactor, old_conn.first.value,
                                           EPOLLIN);
    injected.Notify();
  }));
  ASSERT_TRUE(injected.WaitFor(std::chrono::seconds(10)));
  EXPECT_EQ(s.reactor->Counters().stale_events, stale_before + 1);
  // The new connection is served normally, exactly once.
  absl::StatusOr<std::string> got = ReadExact(second, 4);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  EXPECT_TRUE(EchoRoundTrip(second, "still fine").ok());
  ::close(second);
}

TEST(ReactorTest, IdleConnectionsAreClosed) {
  ReactorOptions o = Threads(2);
  o.idle_timeout = absl::Milliseconds(100);
  Server s = StartServer(o, EchoFactory());
  const int idle = ConnectLoopback(s.port);
  ASSERT_GE(idle, 0);
  // The idle one is closed by the sweep: EOF, not a timeout.
  absl::StatusOr<std::string> got = ReadToEof(idle);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(s.reactor->Counters().idle_timeouts, 1u);
  ::close(idle);
}

TEST(ReactorTest, WriteTimeoutAbortsPeersThatStopReading) {
  ReactorOptions o = Threads(2);
  o.idle_timeout = absl::Seconds(60);  // must not be what closes it
  // Long enough that the healthy reader below, which the same limit covers,
  // is never cut by a descheduled test thread; the stuck one still goes.
  o.write_timeout = absl::Seconds(2);
  Server s = StartServer(o, [] { return std::make_unique<Flood>(32 << 20); });
  const int stuck = ConnectLoopback(s.port);
  ASSERT_GE(stuck, 0);
  ASSERT_TRUE(SendAll(stuck, "x").ok());
  // A reader on another connection is served meanwhile and never aborted.
  const int reader = ConnectLoopback(s.port);
  ASSERT_GE(reader, 0);
  ASSERT_TRUE(SendAll(reader, "y").ok());
  absl::StatusOr<std::string> got = ReadExact(reader, 32 << 20);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == std::string(32 << 20, 'f'));
  EXPECT_TRUE(
      Eventually([&] { return s.reactor->Counters().closes == 1; }, 30000));
  EXPECT_EQ(s.reactor->Counters().write_timeouts, 1u);
  EXPECT_EQ(s.reactor->Counters().idle_timeouts, 0u);
  ::close(reader);
  ::close(stuck);
}

// Replies, then closes from inside OnData: the reply must arrive whole even
// though the client is still sending (the close lingers instead of resetting).
class ReplyAndClose : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view) override {
    if (replied_) return;
    replied_ = true;
    conn.Write(Pattern(100000, 77));
    conn.Close();
  }

 private:
  bool replied_ = false;
};

TEST(ReactorTest, CloseWithUnreadInputStillDeliversReply) {
  Server s =
      StartServer(Threads(2), [] { return std::make_unique<ReplyAndClose>(); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_TRUE(SendAll(fd, Pattern(200000, 1)).ok());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == Pattern(100000, 77));
  ::close(fd);
}

class AbortOnData : public ConnectionHandler {
 public:
  explicit AbortOnData(absl::Status* reason) : reason_(reason) {}
  void OnData(Connection& conn, absl::string_view) override { conn.Abort(); }
  void OnClose(Connection&, const absl::Status& reason) override {
    *reason_ = reason;
  }

 private:
  absl::Status* reason_;
};

TEST(ReactorTest, AbortClosesAtOnceAndReportsWhy) {
  absl::Status reason;
  Server s = StartServer(
      Threads(1), [&] { return std::make_unique<AbortOnData>(&reason); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_TRUE(SendAll(fd, "x").ok());
  const End end = WaitForEnd(fd);
  EXPECT_TRUE(EofOrReset(end)) << EndName(end);
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  s.reactor->Stop();
  s.reactor->Wait();
  EXPECT_EQ(reason.code(), absl::StatusCode::kAborted);
  ::close(fd);
}

}  // namespace
}  // namespace baton
