// Integration tests for Reactor on loopback with real sockets: every byte is
// checked end to end. Loads are sized to stay quick under ThreadSanitizer.
#include "baton/reactor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include <mutex>
#include "baton/connection.h"
#include "lib/internal/reactor_core.h"
#include "tests/util/test_client.h"

namespace baton {
namespace internal {

// Reaches the core to inject synthetic epoll events.
class ReactorTestPeer {
 public:
  static void InjectEvent(Reactor& reactor, uint64_t data, uint32_t events) {
    reactor.core_->InjectEventForTest(data, events);
  }
};

}  // namespace internal

namespace {

using ::baton::testing::ConnectLoopback;
using ::baton::testing::End;
using ::baton::testing::EndName;
using ::baton::testing::EofOrReset;
using ::baton::testing::WaitForEnd;
using ::baton::testing::EchoRoundTrip;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;

class Echo : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
};

HandlerFactory EchoFactory() {
  return [] { return std::make_unique<Echo>(); };
}

struct Server {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
};

Server StartServer(ReactorOptions options, HandlerFactory factory) {
  Server s;
  auto reactor = Reactor::Create(options);
  EXPECT_TRUE(reactor.ok()) << reactor.status();
  s.reactor = std::move(*reactor);
  auto port = s.reactor->Listen(ListenOptions{}, std::move(factory));
  EXPECT_TRUE(port.ok()) << port.status();
  s.port = *port;
  EXPECT_TRUE(s.reactor->Start().ok());
  return s;
}

ReactorOptions Threads(int n) {
  ReactorOptions o;
  o.threads = n;
  return o;
}

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
int ConnectErrno(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int err =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0
          ? 0
          : errno;
  ::close(fd);
  return err;
}

TEST(ReactorTest, CreateRejectsBadOptions) {
  ReactorOptions o;
  o.threads = -1;
  EXPECT_FALSE(Reactor::Create(o).ok());
  o = ReactorOptions();
  o.max_events = 0;
  EXPECT_FALSE(Reactor::Create(o).ok());
  o = ReactorOptions();
  o.read_buffer_size = 1;
  EXPECT_FALSE(Reactor::Create(o).ok());
}

TEST(ReactorTest, ListenRejectsBadAddress) {
  auto r = Reactor::Create(Threads(1));
  ASSERT_TRUE(r.ok());
  ListenOptions l;
  l.address = "not-an-address";
  EXPECT_EQ((*r)->Listen(l, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
  l.address = "127.0.0.1";
  l.port = 70000;
  EXPECT_FALSE((*r)->Listen(l, EchoFactory()).ok());
  l.port = 0;
  l.defer_accept_seconds = -1;
  EXPECT_EQ((*r)->Listen(l, EchoFactory()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Many connections at once, each with sizes from 1 B to 1 MiB, two threads;
// with and without speculative re-reads.
class ReactorEchoTest : public ::testing::TestWithParam<int> {};

TEST_P(ReactorEchoTest, EchoesEveryByteOnManyConnections) {
  ReactorOptions options = Threads(2);
  options.speculative_rounds = GetParam();
  Server s = StartServer(options, EchoFactory());
  constexpr int kConnections = 24;
  const std::vector<size_t> sizes = {1, 13, 64, 1500, 16384, 200000, 1 << 20};
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < kConnections; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(s.port);
      if (fd < 0) {
        failures.fetch_add(1);
        return;
      }
      for (size_t i = 0; i < sizes.size(); ++i) {
        absl::Status st = EchoRoundTrip(fd, Pattern(sizes[i], c * 100 + i));
        if (!st.ok()) {
          ADD_FAILURE() << "connection " << c << " size " << sizes[i] << ": "
                        << st;
          failures.fetch_add(1);
          break;
        }
      }
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_EQ(c.accepts, static_cast<uint64_t>(kConnections));
  EXPECT_EQ(c.bytes_read, c.bytes_written);
  EXPECT_GT(c.rearms, 0u);
  if (GetParam() == 0) {
    EXPECT_EQ(c.speculative_reads, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(SpeculativeRounds, ReactorEchoTest,
                         ::testing::Values(0, 4));

TEST(ReactorTest, MultiMegabyteMessage) {
  Server s = StartServer(Threads(2), EchoFactory());
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(6 << 20, 42)).ok());
  ::close(fd);
}

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

// A two-thread server with one client connected; `id` names the server side.
struct OneConnection {
  Server server;
  ConnectionId id;
  int fd = -1;
  bool ready = false;
};

OneConnection ConnectOne() {
  // Shared with the factory, which lives as long as the reactor.
  struct Opened {
    baton::testing::Notification notification;
    std::atomic<uint64_t> id{0};
  };
  auto opened = std::make_shared<Opened>();
  OneConnection c;
  c.server = StartServer(Threads(2), [opened] {
    return std::make_unique<Registering>([opened](ConnectionId i) {
      opened->id = i.value;
      opened->notification.Notify();
    });
  });
  c.fd = ConnectLoopback(c.server.port);
  c.ready = c.fd >= 0 &&
            opened->notification.WaitFor(std::chrono::seconds(10));
  c.id = ConnectionId{opened->id.load()};
  return c;
}

// Writes from several foreign threads arrive whole, each thread's in order.
TEST(ReactorTest, WritesFromForeignThreadsStayOrderedPerThread) {
  OneConnection c = ConnectOne();
  ASSERT_TRUE(c.ready) << "connection never opened";
  Server& s = c.server;
  const ConnectionId id = c.id;
  const int fd = c.fd;

  constexpr int kWriters = 4;
  constexpr int kMessages = 500;
  // Each message: 1 byte writer id, 4 bytes sequence, 59 bytes of pattern.
  constexpr size_t kMessageSize = 64;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (uint32_t seq = 0; seq < kMessages; ++seq) {
        std::string msg(1, static_cast<char>(w));
        msg.append(reinterpret_cast<const char*>(&seq), 4);
        msg += Pattern(kMessageSize - 5, w * 100000 + seq);
        ASSERT_TRUE(s.reactor->Write(id, msg));
      }
    });
  }
  absl::StatusOr<std::string> got =
      ReadExact(fd, kWriters * kMessages * kMessageSize);
  for (auto& t : writers) t.join();
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<uint32_t> next(kWriters, 0);
  for (size_t off = 0; off < got->size(); off += kMessageSize) {
    const int w = (*got)[off];
    ASSERT_GE(w, 0);
    ASSERT_LT(w, kWriters);
    uint32_t seq;
    std::memcpy(&seq, got->data() + off + 1, 4);
    ASSERT_EQ(seq, next[w]) << "writer " << w << " out of order";
    ASSERT_EQ(got->substr(off + 5, kMessageSize - 5),
              Pattern(kMessageSize - 5, w * 100000 + seq));
    ++next[w];
  }
  ::close(fd);
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
  Server s = StartServer(o, [&] { return std::make_unique<RecordFd>(&mu, &opened); });
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
  ASSERT_EQ(old_conn.first.value & 0xffffffffu, new_conn.first.value & 0xffffffffu);

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

TEST(ReactorTest, CloseFromForeignThreadFlushesFirst) {
  OneConnection c = ConnectOne();
  ASSERT_TRUE(c.ready) << "connection never opened";
  Server& s = c.server;
  const ConnectionId id = c.id;
  const int fd = c.fd;
  const std::string payload = Pattern(2 << 20, 3);
  ASSERT_TRUE(s.reactor->Write(id, payload));
  ASSERT_TRUE(s.reactor->Close(id));
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload);
  ::close(fd);
}

// A peer that never reads: the server stops reading from it once its
// backlog passes the high-water mark, so memory stays bounded; when the
// peer finally reads, every byte arrives.
class TrackingEcho : public ConnectionHandler {
 public:
  explicit TrackingEcho(std::atomic<size_t>* max_pending)
      : max_pending_(max_pending) {}
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    size_t p = conn.pending_output();
    size_t seen = max_pending_->load();
    while (p > seen && !max_pending_->compare_exchange_weak(seen, p)) {
    }
  }

 private:
  std::atomic<size_t>* max_pending_;
};

TEST(ReactorTest, HighWaterMarkBoundsMemoryForNonReadingPeer) {
  ReactorOptions o = Threads(2);
  o.output_high_water = 64 << 10;
  o.read_buffer_size = 16 << 10;
  std::atomic<size_t> max_pending{0};
  Server s = StartServer(
      o, [&] { return std::make_unique<TrackingEcho>(&max_pending); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  // Send (never reading) until the server's backlog has reached the
  // high-water mark, then on until the socket buffers are full too. Waits
  // on events (writability, the server's backlog), not on a send timeout:
  // each wait for writability is bounded at 10 s, a hang, never a pace.
  ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  const std::string chunk = Pattern(64 << 10, 5);
  std::string sent;
  bool full = false;
  for (int i = 0; i < 4000 && !full; ++i) {
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent.append(chunk.data(), static_cast<size_t>(n));
      continue;
    }
    ASSERT_TRUE(n < 0 && errno == EAGAIN) << std::strerror(errno);
    if (max_pending.load() >= o.output_high_water) {
      full = true;  // the server paused and every buffer is full
    } else {
      // The server has not caught up yet: wait until it reads some.
      pollfd p = {fd, POLLOUT, 0};
      ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the server stopped reading "
                                         << "before its high-water mark";
    }
  }
  ASSERT_TRUE(full) << "sent " << sent.size() << " bytes without filling up";
  ASSERT_GT(sent.size(), o.output_high_water * 2)
      << "kernel buffers should absorb more than the high-water mark";
  EXPECT_LE(max_pending.load(), o.output_high_water + o.read_buffer_size);
  // Now read everything back while sending nothing more.
  ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
  ::shutdown(fd, SHUT_WR);
  timeval tv = {10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), sent.size());
  EXPECT_TRUE(*got == sent);
  ::close(fd);
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
  EXPECT_TRUE(Eventually([&] { return s.reactor->Counters().closes == 1; },
                         30000));
  EXPECT_EQ(s.reactor->Counters().write_timeouts, 1u);
  EXPECT_EQ(s.reactor->Counters().idle_timeouts, 0u);
  ::close(reader);
  ::close(stuck);
}

// Answers its first input with a head hinted kMoreFollows, the body of a
// file whose descriptor it hands over, and a trailer.
class HeadFileTrailer : public ConnectionHandler {
 public:
  HeadFileTrailer(std::string path, std::atomic<int>* file_fd)
      : path_(std::move(path)), file_fd_(file_fd) {}
  void OnData(Connection& conn, absl::string_view) override {
    if (done_) return;
    done_ = true;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    file_fd_->store(fd);
    conn.Write("head:", WriteHint::kMoreFollows);
    EXPECT_TRUE(conn.SendFile(fd, 2, 100000, FileOwnership::kTransfer));
    conn.Write(":tail");
  }

 private:
  std::string path_;
  std::atomic<int>* file_fd_;
  bool done_ = false;
};

TEST(ReactorTest, SendFileTakesOverATransferredDescriptor) {
  const std::string path = ::testing::TempDir() + "/transfer.bin";
  const std::string content = Pattern(100002, 9);
  {
    std::ofstream out(path, std::ios::binary);
    out << content;
  }
  std::atomic<int> file_fd{-1};
  Server s = StartServer(Threads(1), [&] {
    return std::make_unique<HeadFileTrailer>(path, &file_fd);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "go").ok());
  absl::StatusOr<std::string> got = ReadExact(fd, 5 + 100000 + 5);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == "head:" + content.substr(2) + ":tail");
  // Sent in full: the connection closed the descriptor it was given.
  EXPECT_TRUE(Eventually([&] {
    return ::fcntl(file_fd.load(), F_GETFD) == -1 && errno == EBADF;
  }));
  ::close(fd);
}

// A kMoreFollows write with nothing after it must still be sent at once,
// not after the kernel's 200 ms cork timer. With one thread, a task posted
// from the handler runs after the reactor has finished with the connection,
// so it sees what the reactor left in the socket: SIOCOUTQNSD counts bytes
// queued but not yet sent.
class HintedOnly : public ConnectionHandler {
 public:
  explicit HintedOnly(std::atomic<int>* unsent) : unsent_(unsent) {}
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data, WriteHint::kMoreFollows);
    const int fd = conn.fd();
    std::atomic<int>* unsent = unsent_;
    conn.reactor().Post([fd, unsent] {
      int n = -1;
      ::ioctl(fd, SIOCOUTQNSD, &n);
      unsent->store(n);
    });
  }

 private:
  std::atomic<int>* unsent_;
};

TEST(ReactorTest, MoreFollowsHintIsPushedWhenNothingFollows) {
  std::atomic<int> unsent{-2};
  Server s = StartServer(Threads(1), [&] {
    return std::make_unique<HintedOnly>(&unsent);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) {
    unsent.store(-2);
    ASSERT_TRUE(SendAll(fd, "ping").ok());
    ASSERT_TRUE(Eventually([&] { return unsent.load() != -2; }));
    EXPECT_EQ(unsent.load(), 0) << "reply held back in the socket";
    absl::StatusOr<std::string> got = ReadExact(fd, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "ping");
  }
  ::close(fd);
}

class EchoOnceAndClose : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    conn.Close();
  }
};

// Counts the epoll events it takes to serve `n` sequential one-request
// connections; checks every reply.
uint64_t EventsForSequentialRequests(int defer_accept_seconds, int n) {
  auto reactor = Reactor::Create(Threads(1));
  EXPECT_TRUE(reactor.ok());
  ListenOptions listen;
  listen.defer_accept_seconds = defer_accept_seconds;
  auto port = (*reactor)->Listen(
      listen, [] { return std::make_unique<EchoOnceAndClose>(); });
  EXPECT_TRUE(port.ok()) << port.status();
  EXPECT_TRUE((*reactor)->Start().ok());
  for (int i = 0; i < n; ++i) {
    const int fd = ConnectLoopback(*port);
    EXPECT_GE(fd, 0);
    const std::string request = absl::StrCat("request ", i);
    EXPECT_TRUE(SendAll(fd, request).ok());
    absl::StatusOr<std::string> got = ReadToEof(fd);
    EXPECT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got.value_or(""), request);
    ::close(fd);
  }
  return (*reactor)->Counters().events;
}

// With a deferred accept the request is read at accept time: one listener
// event per connection instead of a listener event plus a read event.
TEST(ReactorTest, DeferredAcceptServesTheRequestWithoutAnotherEvent) {
  constexpr int kConnections = 20;
  EXPECT_GE(EventsForSequentialRequests(0, kConnections), 2 * kConnections);
  EXPECT_LE(EventsForSequentialRequests(1, kConnections), kConnections);
}

// Drain: the idle connection is closed at once, the one with a reply in
// flight gets all of it first, and nobody new is let in.
TEST(ReactorTest, DrainClosesIdleAtOnceAndFinishesTransfers) {
  static constexpr size_t kReply = 8 << 20;
  Server s = StartServer(Threads(2),
                         [] { return std::make_unique<Flood>(kReply); });
  const int idle = ConnectLoopback(s.port);
  const int busy = ConnectLoopback(s.port);
  ASSERT_GE(idle, 0);
  ASSERT_GE(busy, 0);
  ASSERT_TRUE(SendAll(busy, "x").ok());
  // The reply has started, so most of it is queued in the server.
  absl::StatusOr<std::string> first = ReadExact(busy, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Eventually([&] { return s.reactor->connection_count() == 2; }));
  s.reactor->Drain();
  absl::StatusOr<std::string> idle_got = ReadToEof(idle);
  ASSERT_TRUE(idle_got.ok()) << idle_got.status();
  EXPECT_TRUE(idle_got->empty());
  absl::StatusOr<std::string> rest = ReadToEof(busy);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(*first + *rest == std::string(kReply, 'f'));
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  EXPECT_EQ(ConnectErrno(s.port), ECONNREFUSED) << "accepted while draining";
  EXPECT_EQ(s.reactor->Counters().closes, 2u);
  ::close(idle);
  ::close(busy);
}

TEST(ReactorTest, MaxConnectionsRefusesTheRest) {
  ReactorOptions o = Threads(1);
  o.max_connections = 2;
  Server s = StartServer(o, EchoFactory());
  const int a = ConnectLoopback(s.port);
  const int b = ConnectLoopback(s.port);
  ASSERT_TRUE(EchoRoundTrip(a, "a").ok());
  ASSERT_TRUE(EchoRoundTrip(b, "b").ok());
  const int c = ConnectLoopback(s.port);
  ASSERT_GE(c, 0);  // the kernel completes the handshake...
  const End end = WaitForEnd(c);  // ...then the reactor closes it at once
  EXPECT_TRUE(EofOrReset(end)) << EndName(end);
  EXPECT_TRUE(Eventually([&] { return s.reactor->Counters().rejected == 1; }));
  EXPECT_TRUE(EchoRoundTrip(a, "still here").ok());
  ::close(a);
  ::close(b);
  ::close(c);
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
      s.reactor->RunAfter(absl::Milliseconds(50), [&] { cancelled_ran = true; });
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

// Clients keep sending while the reactor stops: Stop + Wait return, every
// connection is closed (clients see EOF or reset), nothing leaks (ASan).
TEST(ReactorTest, StopUnderLoadClosesEverything) {
  Server s = StartServer(Threads(2), EchoFactory());
  constexpr int kClients = 16;
  std::atomic<bool> go{true};
  std::atomic<int> round_trips{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const int fd = ConnectLoopback(s.port, 5000);
      if (fd < 0) return;
      const std::string msg = Pattern(4096, c);
      // Bounded: stops on the first failure (the server went away) or after
      // 100000 rounds.
      for (int i = 0; i < 100000 && go; ++i) {
        if (!EchoRoundTrip(fd, msg).ok()) break;
        round_trips.fetch_add(1);
      }
      ::close(fd);
    });
  }
  ASSERT_TRUE(Eventually([&] { return round_trips.load() > kClients * 20; }));
  s.reactor->Stop();
  s.reactor->Wait();
  go = false;
  for (auto& t : clients) t.join();
  EXPECT_EQ(s.reactor->connection_count(), 0u);
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_EQ(c.closes, c.accepts);
}

class StopOnData : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
    conn.reactor().Stop();
  }
};

TEST(ReactorTest, StopFromInsideAHandler) {
  Server s = StartServer(Threads(2),
                         [] { return std::make_unique<StopOnData>(); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_TRUE(SendAll(fd, "bye").ok());
  s.reactor->Wait();  // returns because the handler stopped the reactor
  EXPECT_TRUE(s.reactor->stopping());
  absl::StatusOr<std::string> got = ReadToEof(fd);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "bye");
  ::close(fd);
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
  Server s = StartServer(Threads(2),
                         [] { return std::make_unique<ReplyAndClose>(); });
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

TEST(ReactorTest, AdoptServesAConnectedSocket) {
  Server s = StartServer(Threads(2), EchoFactory());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  absl::StatusOr<ConnectionId> id = s.reactor->Adopt(sv[0], EchoFactory());
  ASSERT_TRUE(id.ok()) << id.status();
  timeval tv = {10, 0};
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_TRUE(EchoRoundTrip(sv[1], Pattern(300000, 8)).ok());
  ::close(sv[1]);
}

TEST(ReactorTest, CountersSeeTheWork) {
  Server s = StartServer(Threads(2), EchoFactory());
  const int fd = ConnectLoopback(s.port);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(EchoRoundTrip(fd, Pattern(64, i)).ok());
  }
  ::close(fd);
  ASSERT_TRUE(Eventually([&] { return s.reactor->Counters().closes == 1; }));
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_EQ(c.accepts, 1u);
  EXPECT_EQ(c.bytes_read, 50u * 64);
  EXPECT_EQ(c.bytes_written, 50u * 64);
  // Each message is served either from an epoll event or by a speculative
  // re-read; every event-driven round ends in a re-arm.
  EXPECT_GE(c.events + c.speculative_hits, 50u);
  EXPECT_GE(c.rearms, 1u);
  EXPECT_LE(c.speculative_hits, c.speculative_reads);
  EXPECT_EQ(s.reactor->ThreadCounters().size(), 2u);
  EXPECT_NE(c.ToString().find("rearms="), std::string::npos);
}

}  // namespace
}  // namespace baton
