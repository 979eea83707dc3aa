// Tests for serving a connection (lib/internal/connection_io.cc): reads,
// writes, the high-water mark, SendFile, write hints, the re-arm (and the
// re-arm skipped while still armed), and a full read yielding to queued
// work, through the public Reactor API on loopback with real sockets; every
// byte is checked end to end. Loads are sized to stay quick under
// ThreadSanitizer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
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
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::SendAll;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;
using ::baton::testing::WaitForEnd;

// Many connections at once, each with sizes from 1 B to 1 MiB, two threads;
// with and without re-reads.
class ReactorEchoTest : public ::testing::TestWithParam<int> {};

TEST_P(ReactorEchoTest, EchoesEveryByteOnManyConnections) {
  ReactorOptions options = Threads(2);
  options.reread_rounds = GetParam();
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
  // The client can hold its echo before the server has counted the send.
  EXPECT_TRUE(Eventually([&] {
    const ReactorCounters now = s.reactor->Counters();
    return now.bytes_read == now.bytes_written;
  })) << s.reactor->Counters().ToString();
  EXPECT_GT(c.rearms, 0u);
  if (GetParam() == 0) {
    EXPECT_EQ(c.rereads, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(RereadRounds, ReactorEchoTest,
                         ::testing::Values(0, 4, kReactorUnboundedRereads));

// Opens paused (publishing its id) and counts the bytes it is given.
class PausedSink : public ConnectionHandler {
 public:
  PausedSink(std::atomic<uint64_t>* id, std::atomic<size_t>* bytes)
      : id_(id), bytes_(bytes) {}
  void OnOpen(Connection& conn) override {
    conn.PauseReading();
    id_->store(conn.id().value);
  }
  void OnData(Connection&, absl::string_view data) override {
    bytes_->fetch_add(data.size());
  }

 private:
  std::atomic<uint64_t>* const id_;
  std::atomic<size_t>* const bytes_;
};

// With the default options a connection is re-read for as long as each
// re-read finds data: no round limit sends every fifth message back through
// epoll. Deterministic with one thread: the input (96 buffers of 512 B)
// waits whole in the socket before reading resumes; one event reads 16
// buffers, and each re-read 16 more, so six rounds in a row hit (a bound
// of 4 would re-arm after the fourth), then one misses and re-arms.
TEST(ReactorTest, ReReadsGoOnWhileTheyFindData) {
  constexpr size_t kBuffer = 512;
  const std::string payload = Pattern(96 * kBuffer, 23);
  ReactorOptions o = Threads(1);
  o.read_buffer_size = kBuffer;
  ASSERT_EQ(o.reread_rounds, kReactorUnboundedRereads);
  std::atomic<uint64_t> id{0};
  std::atomic<size_t> bytes{0};
  Server s =
      StartServer(o, [&] { return std::make_unique<PausedSink>(&id, &bytes); });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(Eventually([&] { return id.load() != 0; }));
  ASSERT_TRUE(SendAll(fd, payload).ok());
  ASSERT_TRUE(Eventually([&] {
    int unacked = -1;
    return ::ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked == 0;
  })) << "the server's receive queue did not take the whole payload";
  const ReactorCounters before = s.reactor->Counters();
  ASSERT_TRUE(s.reactor->ResumeReading(ConnectionId{id.load()}));
  ASSERT_TRUE(Eventually([&] { return bytes.load() == payload.size(); }));
  // The last re-read misses and re-arms: wait for it.
  ASSERT_TRUE(Eventually(
      [&] { return s.reactor->Counters().rereads - before.rereads >= 6; }));
  const ReactorCounters after = s.reactor->Counters();
  EXPECT_EQ(after.reread_hits - before.reread_hits, 5u);
  EXPECT_EQ(after.rereads - before.rereads, 6u);
  // One re-arm to resume reading, one after the miss; none in between.
  EXPECT_EQ(after.rearms - before.rearms, 2u);
  ::close(fd);
}

TEST(ReactorTest, MultiMegabyteMessage) {
  Server s = StartServer(Threads(2), EchoFactory());
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(EchoRoundTrip(fd, Pattern(6 << 20, 42)).ok());
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
    // Either the server has paused (its backlog reached the mark: then the
    // socket never becomes writable again) or it has not caught up yet and
    // will read some. Which one can change while we wait, so the wait
    // watches both: a check of the backlog followed by a long poll would
    // miss a pause that comes just after the check.
    bool writable = false;
    for (int waited_ms = 0; waited_ms < 10000 && !writable &&
                            max_pending.load() < o.output_high_water;
         waited_ms += 10) {
      pollfd p = {fd, POLLOUT, 0};
      writable = ::poll(&p, 1, 10) == 1;
    }
    if (max_pending.load() >= o.output_high_water) {
      full = true;  // the server paused and every buffer is full
    } else {
      ASSERT_TRUE(writable) << "the server stopped reading before its "
                            << "high-water mark";
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
  Server s = StartServer(Threads(1),
                         [&] { return std::make_unique<HintedOnly>(&unsent); });
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

// What the handler below saw of its connection's end.
struct BrokenSocket {
  std::mutex mu;
  int closes = 0;  // OnClose calls for the connection it broke
  absl::Status reason;
  Notification closed;
};

// On "break", makes its own socket unusable for epoll from inside OnData:
// dup2 puts the read end of an empty non-blocking pipe on conn.fd(), which
// closes the socket (the kernel drops its epoll registration with it), so
// the re-arm's epoll_ctl(MOD) fails with ENOENT. An empty pipe rather than
// /dev/null: a re-read of /dev/null would see EOF and close the
// connection as peer-closed before any re-arm. Echoes anything else.
class BreaksItsSocket : public ConnectionHandler {
 public:
  BreaksItsSocket(int replacement, BrokenSocket* out)
      : replacement_(replacement), out_(out) {}
  void OnData(Connection& conn, absl::string_view data) override {
    if (data != "break") {
      conn.Write(data);
      return;
    }
    broke_ = true;
    EXPECT_EQ(::dup2(replacement_, conn.fd()), conn.fd())
        << std::strerror(errno);
  }
  void OnClose(Connection&, const absl::Status& reason) override {
    if (!broke_) return;
    {
      std::lock_guard<std::mutex> lock(out_->mu);
      ++out_->closes;
      out_->reason = reason;
    }
    out_->closed.Notify();
  }

 private:
  const int replacement_;
  BrokenSocket* const out_;
  bool broke_ = false;
};

// A re-arm that fails tears the connection down like any other error: one
// OnClose saying why, the slot freed, and the reactor serves on.
TEST(ReactorTest, FailedRearmClosesTheConnectionCleanly) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
  BrokenSocket broken;
  Server s = StartServer(Threads(2), [&] {
    return std::make_unique<BreaksItsSocket>(pipe_fds[0], &broken);
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "break").ok());
  const End end = WaitForEnd(fd);
  EXPECT_TRUE(EofOrReset(end)) << EndName(end);
  ASSERT_TRUE(broken.closed.WaitFor(std::chrono::seconds(10)));
  {
    std::lock_guard<std::mutex> lock(broken.mu);
    EXPECT_FALSE(broken.reason.ok());
    EXPECT_NE(broken.reason.message().find("epoll_ctl"), std::string::npos)
        << broken.reason;
  }
  EXPECT_TRUE(Eventually([&] { return s.reactor->connection_count() == 0; }));
  ::close(fd);

  const int next = ConnectLoopback(s.port);
  ASSERT_GE(next, 0);
  EXPECT_TRUE(EchoRoundTrip(next, Pattern(300000, 11)).ok());
  ::close(next);
  s.reactor->Stop();
  s.reactor->Wait();
  std::lock_guard<std::mutex> lock(broken.mu);
  EXPECT_EQ(broken.closes, 1);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

// Two connections, paired in the order they opened (0 with 1), each handing
// what it reads to the other with Reactor::Write, as a proxy does. From a
// reactor thread that write queues the peer's flush on the ready queue. The
// test pairs them once both are open and before any client sends.
struct Forwarding {
  bool pause_first = false;  // the first connection opens paused
  std::mutex mu;
  std::vector<ConnectionId> opened;  // in OnOpen order
  std::atomic<uint64_t> peer[2] = {};
  std::atomic<int> deliveries[2] = {};  // OnData calls per side
  // Largest pending_output of the peer seen on entering OnData: what was
  // forwarded before this read and has not been sent on yet.
  std::atomic<size_t> peer_backlog_max{0};
  // The peer's pending_output right after the first Write of side 0 (-1
  // until then).
  std::atomic<int64_t> backlog_after_first_write{-1};
  std::atomic<int> failed_writes{0};

  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return opened.size();
  }
  ConnectionId id(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    return opened.at(i);
  }
  void Pair() {
    std::lock_guard<std::mutex> lock(mu);
    peer[0].store(opened.at(1).value);
    peer[1].store(opened.at(0).value);
  }
};

class Forwarder : public ConnectionHandler {
 public:
  explicit Forwarder(Forwarding* f) : f_(f) {}
  void OnOpen(Connection& conn) override {
    std::lock_guard<std::mutex> lock(f_->mu);
    index_ = f_->opened.size();
    f_->opened.push_back(conn.id());
    if (index_ == 0 && f_->pause_first) conn.PauseReading();
  }
  void OnData(Connection& conn, absl::string_view data) override {
    const ConnectionId peer{index_ < 2 ? f_->peer[index_].load() : 0};
    if (peer.value == 0) {
      ADD_FAILURE() << "data on connection " << index_ << " before pairing";
      f_->failed_writes.fetch_add(1);
      return;
    }
    f_->deliveries[index_].fetch_add(1);
    const size_t backlog = conn.reactor().pending_output(peer);
    size_t seen = f_->peer_backlog_max.load();
    while (backlog > seen &&
           !f_->peer_backlog_max.compare_exchange_weak(seen, backlog)) {
    }
    if (!conn.reactor().Write(peer, data)) f_->failed_writes.fetch_add(1);
    if (index_ == 0 && f_->deliveries[0].load() == 1) {
      f_->backlog_after_first_write.store(
          static_cast<int64_t>(conn.reactor().pending_output(peer)));
    }
  }

 private:
  Forwarding* const f_;
  size_t index_ = 0;
};

// Connects two clients to `s`, in order, and pairs their server sides.
bool ConnectPair(const Server& s, Forwarding* f, int* first, int* second) {
  *first = ConnectLoopback(s.port);
  if (*first < 0 || !Eventually([&] { return f->count() == 1; })) return false;
  *second = ConnectLoopback(s.port);
  if (*second < 0 || !Eventually([&] { return f->count() == 2; })) {
    return false;
  }
  f->Pair();
  return true;
}

// A read that fills the thread's read buffer while other ready work is
// queued stops there: the connection goes behind that work (read_yields)
// and reads on after it. Deterministic with one thread: A's input waits
// whole in its socket (A opened paused; the client's bytes are all acked)
// before A may read, so each full read of A is followed at once by the
// forward it queued for B. With the yield, B sends each chunk on before A
// reads the next; without it, A reads every chunk in one go while B's
// backlog grows.
TEST(ReactorTest, FullReadYieldsToTheForwardItQueued) {
  constexpr size_t kBuffer = 16 << 10;
  // 3.5 buffers: several full reads, and well inside the receive window a
  // loopback socket advertises before it is read from.
  const std::string payload = Pattern(3 * kBuffer + kBuffer / 2, 21);
  Forwarding f;
  f.pause_first = true;
  ReactorOptions o = Threads(1);
  o.read_buffer_size = kBuffer;
  Server s = StartServer(o, [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  const ConnectionId id_a = f.id(0);

  ASSERT_TRUE(SendAll(a, payload).ok());
  // Everything acked: it all sits in A's receive queue.
  ASSERT_TRUE(Eventually([&] {
    int unacked = -1;
    return ::ioctl(a, SIOCOUTQ, &unacked) == 0 && unacked == 0;
  })) << "the server's receive queue did not take the whole payload";
  EXPECT_EQ(f.deliveries[0].load(), 0) << "A read while paused";
  const uint64_t yields_before = s.reactor->Counters().read_yields;

  ASSERT_TRUE(s.reactor->ResumeReading(id_a));
  absl::StatusOr<std::string> got = ReadExact(b, payload.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == payload) << "forwarded bytes differ";
  EXPECT_GE(f.deliveries[0].load(), 2) << "expected several reads";
  EXPECT_GE(s.reactor->Counters().read_yields, yields_before + 1);
  EXPECT_EQ(f.peer_backlog_max.load(), 0u)
      << "A read a chunk before its previous one was sent on to B";
  EXPECT_EQ(f.failed_writes.load(), 0);
  ::close(a);
  ::close(b);
}

// A handler's Write to a connection nobody is serving is handed to the
// kernel before Write returns, not when that connection's ready item comes
// up behind the rest of the queue (SendQueuedNow). Deterministic: B has
// done nothing since it opened, so it is armed and idle when A relays.
TEST(ReactorTest, HandlerWriteToAnIdleConnectionIsSentAtOnce) {
  Forwarding f;
  Server s =
      StartServer(Threads(1), [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  const uint64_t sends_before = s.reactor->Counters().sends_at_write;
  const std::string m = Pattern(300, 41);
  ASSERT_TRUE(SendAll(a, m).ok());
  absl::StatusOr<std::string> got = ReadExact(b, m.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == m) << "relayed bytes differ";
  // The client can have the bytes before the handler goes on after Write.
  ASSERT_TRUE(Eventually([&] {
    return f.backlog_after_first_write.load() >= 0 &&
           s.reactor->Counters().sends_at_write > sends_before;
  }));
  EXPECT_EQ(f.backlog_after_first_write.load(), 0)
      << "the bytes were still queued when Write returned";
  EXPECT_EQ(s.reactor->Counters().sends_at_write, sends_before + 1);
  EXPECT_EQ(f.failed_writes.load(), 0);
  ::close(a);
  ::close(b);
}

// One relayed round trip through a forwarding pair: `ping` from client
// `from` must reach client `to` byte-exact, then `pong` the other way.
absl::Status RelayRoundTrip(int from, int to, const std::string& ping,
                            const std::string& pong) {
  for (const auto& [src, dst, m] :
       {std::make_tuple(from, to, &ping), std::make_tuple(to, from, &pong)}) {
    if (absl::Status st = SendAll(src, *m); !st.ok()) return st;
    absl::StatusOr<std::string> got = ReadExact(dst, m->size());
    if (!got.ok()) return got.status();
    if (*got != *m) {
      return absl::DataLossError(src == from ? "relayed ping differs"
                                             : "relayed pong differs");
    }
  }
  return absl::OkStatus();
}

// Every park ends exactly once: taken over by a request, or its bound ran
// out. Checked once nothing is parked any more (the bound sees to that).
bool ParksAllEnded(Reactor& reactor) {
  return Eventually([&] {
    const ReactorCounters c = reactor.Counters();
    return c.parks == c.park_wakes + c.park_expiries + c.park_rearms;
  });
}

// Waits (bounded) until the peer has acknowledged every byte sent on `fd`:
// they all sit in the server's receive queue.
bool AllAcked(int fd) {
  return Eventually([&] {
    int unacked = -1;
    return ::ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked == 0;
  });
}

// A relayed ping-pong parks the side that relayed (no re-arm), and the
// answer's Write takes the parked side over. Deterministic with one thread:
// both clients' messages wait whole in their sockets while polling is held,
// so one epoll_wait returns both sides. The thread keeps one side's event
// and hands the other over; it reads the side it kept, relays (claiming the
// other side to send at once) and parks it: an event disarmed it, and it
// has nothing of its own to send. Then it serves the other side, whose
// message, relayed back, is a Write to the parked side and takes it over.
// Between the two only one leader turn passes (the poll that ends the
// pass, with work still queued), far inside the bound, and no wait for the
// kernel can run the bound out, whatever the timing.
TEST(ReactorTest, RelayedPingPongParksEachSideUntilTheAnswerIsWritten) {
  Forwarding f;
  Server s =
      StartServer(Threads(1), [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  const std::string ping = Pattern(120, 51);
  const std::string pong = Pattern(80, 52);
  const ReactorCounters before = s.reactor->Counters();
  internal::ReactorTestPeer::HoldPolling(*s.reactor);
  ASSERT_TRUE(SendAll(a, ping).ok());
  ASSERT_TRUE(SendAll(b, pong).ok());
  const bool acked = AllAcked(a) && AllAcked(b);
  internal::ReactorTestPeer::ResumePolling(*s.reactor);
  ASSERT_TRUE(acked) << "the server's receive queues did not take both";
  absl::StatusOr<std::string> got = ReadExact(b, ping.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == ping) << "relayed ping differs";
  got = ReadExact(a, pong.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == pong) << "relayed pong differs";
  // The answer's bytes can reach the client before the serve that took the
  // parked side over has counted it.
  EXPECT_TRUE(Eventually([&] {
    return s.reactor->Counters().park_wakes >= before.park_wakes + 1;
  })) << s.reactor->Counters().ToString();
  const ReactorCounters after = s.reactor->Counters();
  EXPECT_GE(after.parks, before.parks + 1) << after.ToString();
  // Parking goes on as usual afterwards: byte-exact round trips.
  for (int i = 0; i < 20; ++i) {
    const absl::Status st = RelayRoundTrip(a, b, Pattern(1 + i % 97, 2 * i),
                                           Pattern(1 + i % 89, 2 * i + 1));
    ASSERT_TRUE(st.ok()) << "round trip " << i << ": " << st;
  }
  EXPECT_TRUE(ParksAllEnded(*s.reactor)) << s.reactor->Counters().ToString();
  EXPECT_EQ(f.failed_writes.load(), 0);
  ::close(a);
  ::close(b);
}

// With nothing else to do, a thread about to wait in epoll_wait re-arms
// the parked sides first: a single relayed ping-pong on one thread parks
// each side and takes it back that way, with no timed wait.
TEST(ReactorTest, IdleReactorReArmsParkedSides) {
  Forwarding f;
  Server s =
      StartServer(Threads(1), [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  for (int i = 0; i < 20; ++i) {
    const std::string m = Pattern(30 + i, 300 + i);
    const absl::Status st = RelayRoundTrip(a, b, m, m);
    ASSERT_TRUE(st.ok()) << "round trip " << i << ": " << st;
  }
  EXPECT_TRUE(ParksAllEnded(*s.reactor)) << s.reactor->Counters().ToString();
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_GE(c.park_rearms, 1u) << c.ToString();
  ::close(a);
  ::close(b);
}

// A parked side whose answer never comes still has its input read: the
// bound. A relays m1 and parks; B's client does not answer; m2 reaches A
// with nothing written to A, so only the bound can deliver it.
TEST(ReactorTest, ParkedSideIsReadWhenNoAnswerComes) {
  Forwarding f;
  Server s =
      StartServer(Threads(1), [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  const std::string m1 = Pattern(100, 41);
  const std::string m2 = Pattern(200, 42);
  ASSERT_TRUE(SendAll(a, m1).ok());
  absl::StatusOr<std::string> got = ReadExact(b, m1.size());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(*got == m1);
  ASSERT_TRUE(Eventually([&] { return s.reactor->Counters().parks >= 1; }));
  ASSERT_TRUE(SendAll(a, m2).ok());
  got = ReadExact(b, m2.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == m2) << "the second message differs";
  // Read by the bound: an expiry (a read) or, the thread being idle, a
  // re-arm that let epoll report m2.
  const ReactorCounters c = s.reactor->Counters();
  EXPECT_GE(c.park_expiries + c.park_rearms, 1u) << c.ToString();
  EXPECT_TRUE(ParksAllEnded(*s.reactor)) << s.reactor->Counters().ToString();
  ::close(a);
  ::close(b);
}

// Close from outside takes a parked connection over like a Write does (A
// parks after relaying m; by the time Close comes its bound may also have
// run out: either way it must close): its client sees the end, and stopping
// the reactor with a side parked frees everything (the asan run checks).
TEST(ReactorTest, ParkedSideClosesOnRequest) {
  Forwarding f;
  Server s =
      StartServer(Threads(2), [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  const ConnectionId id_a = f.id(0);
  const std::string m = Pattern(64, 43);
  ASSERT_TRUE(SendAll(a, m).ok());
  absl::StatusOr<std::string> got = ReadExact(b, m.size());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(*got == m);
  // The relay is sent before A's serve goes on to park A (a handler's
  // Write is sent at once), so the client can be ahead of the count.
  ASSERT_TRUE(Eventually([&] { return s.reactor->Counters().parks >= 1; }))
      << s.reactor->Counters().ToString();
  ASSERT_TRUE(s.reactor->Close(id_a));
  EXPECT_EQ(WaitForEnd(a), End::kEof);
  ASSERT_TRUE(SendAll(b, m).ok());  // to a closed peer: dropped, no crash
  EXPECT_TRUE(ParksAllEnded(*s.reactor)) << s.reactor->Counters().ToString();
  ::close(a);
  ::close(b);
}

// park_relays = false: the same relays, byte-exact, and nothing parks.
TEST(ReactorTest, ParkingCanBeTurnedOff) {
  Forwarding f;
  ReactorOptions o = Threads(1);
  o.park_relays = false;
  Server s = StartServer(o, [&f] { return std::make_unique<Forwarder>(&f); });
  int a = -1;
  int b = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &a, &b));
  for (int i = 0; i < 20; ++i) {
    const std::string m = Pattern(50 + i, 60 + i);
    const absl::Status st = RelayRoundTrip(a, b, m, m);
    ASSERT_TRUE(st.ok()) << "round trip " << i << ": " << st;
  }
  EXPECT_EQ(s.reactor->Counters().parks, 0u);
  ::close(a);
  ::close(b);
}

// Many relayed ping-pongs at once on several threads: takeovers by Writes
// race the bound and each other (the tsan run checks the claim hand-over);
// every byte arrives, and every park ends exactly once.
TEST(ReactorTest, ManyRelayedPairsOnSeveralThreadsStayByteExact) {
  constexpr int kPairs = 6;
  constexpr int kRounds = 150;
  Forwarding f[kPairs];
  std::atomic<int> next{0};
  // Connection 2p and 2p+1 belong to pair p, in accept order: the pairs are
  // connected one at a time.
  Server s = StartServer(Threads(4), [&] {
    const int n = next.fetch_add(1);
    return std::make_unique<Forwarder>(&f[n / 2]);
  });
  int fds[kPairs][2];
  for (int p = 0; p < kPairs; ++p) {
    ASSERT_TRUE(ConnectPair(s, &f[p], &fds[p][0], &fds[p][1]));
  }
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int p = 0; p < kPairs; ++p) {
    clients.emplace_back([&, p] {
      for (int i = 0; i < kRounds; ++i) {
        const absl::Status st = RelayRoundTrip(
            fds[p][0], fds[p][1], Pattern(1 + (i * 7 + p) % 300, p * 1000 + i),
            Pattern(1 + (i * 5 + p) % 200, p * 2000 + i));
        if (!st.ok()) {
          ADD_FAILURE() << "pair " << p << " round " << i << ": " << st;
          failures.fetch_add(1);
          return;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(ParksAllEnded(*s.reactor)) << s.reactor->Counters().ToString();
  for (int p = 0; p < kPairs; ++p) {
    EXPECT_EQ(f[p].failed_writes.load(), 0);
    ::close(fds[p][0]);
    ::close(fds[p][1]);
  }
}

// Echoes, and publishes its id.
class RegisteringEcho : public ConnectionHandler {
 public:
  explicit RegisteringEcho(std::function<void(ConnectionId)> on_open)
      : on_open_(std::move(on_open)) {}
  void OnOpen(Connection& conn) override { on_open_(conn.id()); }
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }

 private:
  std::function<void(ConnectionId)> on_open_;
};

// A foreign Write claims an idle connection that epoll still has armed with
// the interest it needs: no epoll_ctl (rearms_skipped), and it stays armed,
// so the client's next message is still served.
TEST(ReactorTest, ForeignWriteToAnArmedConnectionSkipsTheRearm) {
  auto opened = std::make_shared<Notification>();
  auto id_value = std::make_shared<std::atomic<uint64_t>>(0);
  Server s = StartServer(Threads(1), [opened, id_value] {
    return std::make_unique<RegisteringEcho>(
        [opened, id_value](ConnectionId i) {
          id_value->store(i.value);
          opened->Notify();
        });
  });
  const int fd = ConnectLoopback(s.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(opened->WaitFor(std::chrono::seconds(10)));
  const ConnectionId id{id_value->load()};

  // One round trip: an event, served, re-armed.
  ASSERT_TRUE(SendAll(fd, "ping").ok());
  absl::StatusOr<std::string> got = ReadExact(fd, 4);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  // With one thread, a posted task runs once the ready queue is empty, so
  // after the connection's serve (and its re-read) ended in a re-arm and a
  // release: the connection is idle and armed.
  auto idle = std::make_shared<Notification>();
  ASSERT_TRUE(s.reactor->Post([idle] { idle->Notify(); }));
  ASSERT_TRUE(idle->WaitFor(std::chrono::seconds(10)));

  const ReactorCounters before = s.reactor->Counters();
  ASSERT_TRUE(s.reactor->Write(id, "x"));
  got = ReadExact(fd, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "x");
  EXPECT_TRUE(Eventually([&] {
    return s.reactor->Counters().rearms_skipped >= before.rearms_skipped + 1;
  })) << "the foreign write's re-arm was not skipped";
  EXPECT_EQ(s.reactor->Counters().rearms, before.rearms)
      << "the foreign write re-armed with epoll_ctl";

  // Still armed: the next message is served (a wrong skip leaves the fd
  // disarmed, and this read runs into the client's 10 s receive timeout).
  ASSERT_TRUE(SendAll(fd, "pong").ok());
  got = ReadExact(fd, 4);
  ASSERT_TRUE(got.ok()) << got.status() << " (connection left disarmed?)";
  EXPECT_EQ(*got, "pong");
  ::close(fd);
}

// Holds the first OnDrained it is armed for until released; echoes.
struct DrainedGate {
  std::atomic<bool> hold{false};
  Notification entered;
  Notification release;
};

class EchoHoldingDrained : public ConnectionHandler {
 public:
  explicit EchoHoldingDrained(DrainedGate* gate) : gate_(gate) {}
  void OnData(Connection& conn, absl::string_view data) override {
    conn.Write(data);
  }
  void OnDrained(Connection&) override {
    if (!gate_->hold.exchange(false)) return;
    gate_->entered.Notify();
    gate_->release.WaitFor(std::chrono::seconds(10));
  }

 private:
  DrainedGate* const gate_;
};

// A connected loopback pair: `client` with the test client's timeouts, and
// `server` for Reactor::Adopt.
bool LoopbackPair(int* client, int* server) {
  *client = -1;
  *server = -1;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return false;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::listen(listener, 1) == 0 &&
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    *client = ConnectLoopback(ntohs(addr.sin_port));
    if (*client >= 0) {
      *server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    }
  }
  ::close(listener);
  return *client >= 0 && *server >= 0;
}

// The skip's other half: an event that arrives while a Request holds the
// claim of an armed connection is dropped as busy, and delivering it
// disarmed the fd. The owner's re-arm is skipped (still "armed" as far as
// it knew), but its release finds the event's kPending, forgets the arming,
// serves the input and re-arms for real: the message after it is served.
// Two threads: the owner waits in OnDrained (the foreign write's flush)
// while the other one polls and takes the event. No re-reads:
// a queued re-read could pick up the next message without epoll and hide
// a connection left disarmed.
TEST(ReactorTest, EventDroppedAsBusyDuringASkippedRearmRearmsForReal) {
  DrainedGate gate;
  ReactorOptions options = Threads(2);
  options.reread_rounds = 0;
  auto created = Reactor::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  Reactor& reactor = **created;
  ASSERT_TRUE(reactor.Start().ok());
  int client = -1;
  int server = -1;
  ASSERT_TRUE(LoopbackPair(&client, &server));
  // Adopt opens the connection in a posted task (OnOpen, the first arming
  // with epoll, the release), counted in `tasks` after it returned: from
  // then on the connection is idle and armed.
  const uint64_t tasks_before = reactor.Counters().tasks;
  absl::StatusOr<ConnectionId> id = reactor.Adopt(
      server, [&gate] { return std::make_unique<EchoHoldingDrained>(&gate); });
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(
      Eventually([&] { return reactor.Counters().tasks >= tasks_before + 1; }));

  const ReactorCounters before = reactor.Counters();
  gate.hold = true;
  ASSERT_TRUE(reactor.Write(*id, "x"));  // claimed through Request
  ASSERT_TRUE(gate.entered.WaitFor(std::chrono::seconds(10)));
  absl::StatusOr<std::string> got = ReadExact(client, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "x");
  ASSERT_TRUE(SendAll(client, "ping").ok());
  const bool dropped = Eventually(
      [&] { return reactor.Counters().busy_events > before.busy_events; });
  gate.release.Notify();
  ASSERT_TRUE(dropped) << "the other thread never took the event";

  got = ReadExact(client, 4);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "ping");
  EXPECT_TRUE(Eventually([&] {
    return reactor.Counters().rearms_skipped >= before.rearms_skipped + 1;
  })) << "the re-arm under the foreign write was not skipped";
  // Armed for real after all: a further message is served.
  ASSERT_TRUE(SendAll(client, "again").ok());
  got = ReadExact(client, 5);
  ASSERT_TRUE(got.ok()) << got.status() << " (connection left disarmed?)";
  EXPECT_EQ(*got, "again");
  ::close(client);
  reactor.Stop();
  reactor.Wait();
}

// Bulk both ways at once through a forwarding pair, byte-exact, with reads
// yielding to forwards and skipped re-arms racing events on several threads.
class ReactorForwardTest : public ::testing::TestWithParam<int> {};

TEST_P(ReactorForwardTest, BulkBothWaysThroughAForwarderArrivesByteExact) {
  constexpr size_t kSize = 4 << 20;
  const std::string to_second = Pattern(kSize, 31);
  const std::string to_first = Pattern(kSize, 32);
  Forwarding f;
  Server s = StartServer(Threads(GetParam()),
                         [&f] { return std::make_unique<Forwarder>(&f); });
  int first = -1;
  int second = -1;
  ASSERT_TRUE(ConnectPair(s, &f, &first, &second));

  absl::Status sent_first;
  absl::Status sent_second;
  absl::StatusOr<std::string> got_first;
  absl::StatusOr<std::string> got_second;
  std::vector<std::thread> clients;
  clients.emplace_back([&] { sent_first = SendAll(first, to_second); });
  clients.emplace_back([&] { sent_second = SendAll(second, to_first); });
  clients.emplace_back([&] { got_second = ReadExact(second, kSize); });
  got_first = ReadExact(first, kSize);
  for (auto& t : clients) t.join();

  EXPECT_TRUE(sent_first.ok()) << sent_first;
  EXPECT_TRUE(sent_second.ok()) << sent_second;
  ASSERT_TRUE(got_first.ok()) << got_first.status();
  ASSERT_TRUE(got_second.ok()) << got_second.status();
  EXPECT_TRUE(*got_second == to_second) << "first -> second differs";
  EXPECT_TRUE(*got_first == to_first) << "second -> first differs";
  EXPECT_EQ(f.failed_writes.load(), 0);
  EXPECT_TRUE(Eventually([&] {
    const ReactorCounters c = s.reactor->Counters();
    return c.bytes_read == 2 * kSize && c.bytes_written == 2 * kSize;
  })) << s.reactor->Counters().ToString();
  ::close(first);
  ::close(second);
}

INSTANTIATE_TEST_SUITE_P(Threads, ReactorForwardTest, ::testing::Values(2, 4));

}  // namespace
}  // namespace baton
