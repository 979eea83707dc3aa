// Tests for serving a connection (lib/internal/connection_io.cc): reads,
// writes, the high-water mark, SendFile, write hints and the re-arm, through
// the public Reactor API on loopback with real sockets; every byte is checked
// end to end. Loads are sized to stay quick under ThreadSanitizer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
// /dev/null: a speculative re-read of /dev/null would see EOF and close the
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

}  // namespace
}  // namespace baton
