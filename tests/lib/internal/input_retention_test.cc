// Input retention (Connection::Retain, lib/internal/connection_io.cc
// Deliver): a line-framed handler fed messages split at every byte
// boundary, a message larger than the read buffer assembled without copying
// the new bytes, the retained-input limit, no copy at all when the handler
// consumes everything (counted by ReactorCounters::retained_bytes), and the
// memory retained input takes (InputBuffer::allocated): what is kept, not
// a read buffer, and never more than the limit plus one read.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "baton/reactor.h"
#include "lib/internal/connection_extras.h"
#include "tests/lib/internal/reactor_test_support.h"
#include "tests/util/test_client.h"

namespace baton {
namespace {

using ::baton::internal::InputBuffer;

using ::baton::testing::ConnectLoopback;
using ::baton::testing::Eventually;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::Record;
using ::baton::testing::RecordingHandler;
using ::baton::testing::SendAll;
using ::baton::testing::StartReactor;
using ::baton::testing::Threads;

// Answers every complete line with "<line>|\n"; keeps the partial one.
class Lines : public ConnectionHandler {
 public:
  void OnData(Connection& conn, absl::string_view data) override {
    size_t start = 0;
    for (size_t nl; (nl = data.find('\n', start)) != data.npos;
         start = nl + 1) {
      std::string reply(data.substr(start, nl - start));
      reply += "|\n";
      conn.Write(reply);
    }
    conn.Retain(data.size() - start);
  }
};

struct LineServer {
  std::unique_ptr<Reactor> reactor;
  int port = 0;
  explicit LineServer(ReactorOptions options = Threads(2)) {
    reactor = StartReactor(options);
    auto p = reactor->Listen(ListenOptions{},
                             [] { return std::make_unique<Lines>(); });
    EXPECT_TRUE(p.ok());
    port = p.ok() ? *p : 0;
  }
};

// Each message is sent in two parts, the second only once the server has
// read the first, so the split really reaches OnData at that byte.
TEST(InputRetentionTest, MessagesSplitAtEveryByteBoundary) {
  LineServer server;
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  const std::string message = "first line\nsecond\nthe third one\n";
  uint64_t read_so_far = 0;
  for (size_t split = 1; split < message.size(); ++split) {
    ASSERT_TRUE(SendAll(fd, message.substr(0, split)).ok());
    read_so_far += split;
    ASSERT_TRUE(Eventually(
        [&] { return server.reactor->Counters().bytes_read >= read_so_far; }));
    ASSERT_TRUE(SendAll(fd, message.substr(split)).ok());
    read_so_far += message.size() - split;
    auto got = ReadExact(fd, message.size() + 3);
    ASSERT_TRUE(got.ok()) << got.status() << " at split " << split;
    EXPECT_EQ(*got, "first line|\nsecond|\nthe third one|\n")
        << "split at " << split;
  }
  EXPECT_GT(server.reactor->Counters().retained_bytes, 0u);
  ::close(fd);
}

// One byte at a time, each read by the server before the next is sent.
TEST(InputRetentionTest, OneByteAtATime) {
  LineServer server;
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  const std::string line = Pattern(200, 1);
  std::string message;
  for (char c : line) message += c == '\n' ? 'x' : c;
  message += '\n';
  for (size_t i = 0; i < message.size(); ++i) {
    ASSERT_TRUE(SendAll(fd, message.substr(i, 1)).ok());
    ASSERT_TRUE(Eventually(
        [&] { return server.reactor->Counters().bytes_read >= i + 1; }));
  }
  auto got = ReadExact(fd, message.size() + 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, message.substr(0, message.size() - 1) + "|\n");
  ::close(fd);
}

// Everything consumed: nothing is ever copied.
TEST(InputRetentionTest, NothingCopiedWhenEverythingIsConsumed) {
  LineServer server;
  const int fd = ConnectLoopback(server.port);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 200; ++i) {
    const std::string line = "request " + std::to_string(i) + "\n";
    ASSERT_TRUE(SendAll(fd, line).ok());
    auto got = ReadExact(fd, line.size() + 1);
    ASSERT_TRUE(got.ok());
  }
  EXPECT_EQ(server.reactor->Counters().retained_bytes, 0u);
  ::close(fd);
}

// A fixed-size message far larger than the read buffer, retained until
// complete: only the first read's bytes are copied; the rest is read
// straight behind them.
class Fixed : public ConnectionHandler {
 public:
  explicit Fixed(size_t size) : size_(size) {}
  void OnData(Connection& conn, absl::string_view data) override {
    if (data.size() < size_) {
      conn.Retain(data.size());
      return;
    }
    conn.Write(data.substr(0, size_));
    conn.Retain(data.size() - size_);
  }

 private:
  size_t size_;
};

TEST(InputRetentionTest, LargeMessageAssembledWithoutCopyingNewBytes) {
  static constexpr size_t kSize = 3 << 20;
  ReactorOptions options = Threads(2);
  options.read_buffer_size = 16 << 10;
  options.max_retained_input = 4 << 20;
  auto reactor = StartReactor(options);
  auto port = reactor->Listen(ListenOptions{},
                              [] { return std::make_unique<Fixed>(kSize); });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  const std::string message = Pattern(kSize, 77);
  ASSERT_TRUE(testing::EchoRoundTrip(fd, message).ok());
  // Only bytes taken from a thread's read buffer are copied: at most one
  // buffer's worth per message (the first read), never the whole message.
  EXPECT_LE(reactor->Counters().retained_bytes, options.read_buffer_size);
  EXPECT_GT(reactor->Counters().retained_bytes, 0u);
  ::close(fd);
}

TEST(InputRetentionTest, PeerExceedingTheLimitIsClosed) {
  ReactorOptions options = Threads(2);
  options.max_retained_input = 1000;
  auto reactor = StartReactor(options);
  auto record = std::make_shared<Record>();
  auto port = reactor->Listen(ListenOptions{}, [record] {
    auto h = std::make_unique<RecordingHandler>(record);
    h->on_data = [](Connection& conn, absl::string_view data) {
      conn.Retain(data.size());  // never a complete message
    };
    return h;
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  // Small pieces, so that several reads accumulate past the limit.
  for (int i = 0; i < 20 && !record->done.HasBeenNotified(); ++i) {
    if (!SendAll(fd, std::string(100, 'a')).ok()) break;
    Eventually([&] {
      return reactor->Counters().bytes_read >= 100u * (i + 1) ||
             record->done.HasBeenNotified();
    });
  }
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(record->status().code(), absl::StatusCode::kResourceExhausted)
      << record->status();
  EXPECT_NE(record->status().message().find("max_retained_input"),
            std::string::npos);
  EXPECT_LE(reactor->Counters().bytes_read, 1100u);
  auto rest = ReadToEof(fd);  // closed: EOF or reset, never a hang
  (void)rest;
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return reactor->connection_count() == 0; }));
}

// Many connections each waiting with one byte of an unfinished line hold
// that byte each, not the block a read went to: the tail a read leaves is
// moved to a block of its own size. Each connection first retains "a"
// (copied from the thread's read buffer), then reads "b\nc" behind it
// (into the retained block, grown by a read's room), answers "ab" and keeps
// "c". Once the lines are finished, nothing is held at all.
TEST(InputRetentionTest, WaitingConnectionsHoldOnlyTheBytesTheyKeep) {
  constexpr int kConnections = 20;
  LineServer server;
  const size_t before = InputBuffer::allocated();
  std::vector<int> fds;
  uint64_t read_so_far = 0;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ConnectLoopback(server.port);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_TRUE(SendAll(fd, "a").ok());
    read_so_far += 1;
    ASSERT_TRUE(Eventually(
        [&] { return server.reactor->Counters().bytes_read >= read_so_far; }));
    ASSERT_TRUE(SendAll(fd, "b\nc").ok());
    read_so_far += 3;
    auto got = ReadExact(fd, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "ab|\n");
  }
  // The answer can reach the client before Deliver has kept the tail.
  EXPECT_TRUE(Eventually([&] {
    return InputBuffer::allocated() - before == size_t{kConnections};
  })) << "held "
      << InputBuffer::allocated() - before << " bytes for " << kConnections
      << " connections keeping 1 byte each";
  for (int fd : fds) {
    ASSERT_TRUE(SendAll(fd, "d\n").ok());
    auto got = ReadExact(fd, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "cd|\n");
  }
  EXPECT_TRUE(Eventually([&] { return InputBuffer::allocated() == before; }))
      << "held " << InputBuffer::allocated() - before
      << " bytes with every line finished";
  for (int fd : fds) ::close(fd);
}

// A read behind retained input makes room for a whole read first; one
// that then finds nothing (a re-read that misses: with one thread every
// read is followed by one) must not leave the connection holding that room.
TEST(InputRetentionTest, AReadThatFindsNothingLeavesOnlyTheKeptBytes) {
  constexpr int kConnections = 8;
  LineServer server(Threads(1));
  const size_t before = InputBuffer::allocated();
  std::vector<int> fds;
  uint64_t read_so_far = 0;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ConnectLoopback(server.port);
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_TRUE(SendAll(fd, "a").ok());
    read_so_far += 1;
    ASSERT_TRUE(Eventually(
        [&] { return server.reactor->Counters().bytes_read >= read_so_far; }));
  }
  EXPECT_TRUE(Eventually([&] {
    return InputBuffer::allocated() - before == size_t{kConnections};
  })) << "held "
      << InputBuffer::allocated() - before << " bytes for " << kConnections
      << " connections keeping 1 byte each";
  EXPECT_GE(server.reactor->Counters().rereads, uint64_t{kConnections});
  for (int fd : fds) {
    ASSERT_TRUE(SendAll(fd, "b\n").ok());
    auto got = ReadExact(fd, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "ab|\n");
  }
  EXPECT_TRUE(Eventually([&] { return InputBuffer::allocated() == before; }));
  for (int fd : fds) ::close(fd);
}

// Retains everything it is given (never a complete message), checks the
// bytes, and notes the most retained input has taken while it looked:
// inside OnData the block holds the read just made, at its largest.
class RetainAll : public ConnectionHandler {
 public:
  RetainAll(std::string expected, std::atomic<size_t>* peak,
            std::atomic<int>* mismatches)
      : expected_(std::move(expected)), peak_(peak), mismatches_(mismatches) {}
  void OnData(Connection& conn, absl::string_view data) override {
    if (data != absl::string_view(expected_).substr(0, data.size())) {
      mismatches_->fetch_add(1);
    }
    const size_t now = InputBuffer::allocated();
    size_t seen = peak_->load();
    while (now > seen && !peak_->compare_exchange_weak(seen, now)) {
    }
    conn.Retain(data.size());
  }

 private:
  const std::string expected_;
  std::atomic<size_t>* const peak_;
  std::atomic<int>* const mismatches_;
};

// A peer that never finishes its message: the retained block grows by
// doubling, but never past max_retained_input plus one read (the bound the
// options document), up to the point where the connection is closed. The
// pieces are 1000 bytes, each read before the next is sent, so the reads
// and the block's growth are the same every run (doubling alone would
// reach 20384 bytes here).
TEST(InputRetentionTest, RetainedInputStaysWithinTheLimitPlusOneRead) {
  constexpr size_t kPiece = 1000;
  ReactorOptions options = Threads(1);
  options.read_buffer_size = 4096;
  options.max_retained_input = 10000;
  const std::string message = Pattern(12 * kPiece, 5);
  std::atomic<size_t> peak{0};
  std::atomic<int> mismatches{0};
  const size_t before = InputBuffer::allocated();
  auto reactor = StartReactor(options);
  auto record = std::make_shared<Record>();
  auto port = reactor->Listen(ListenOptions{}, [&, record] {
    auto h = std::make_unique<RecordingHandler>(record);
    auto retain = std::make_shared<RetainAll>(message, &peak, &mismatches);
    h->on_data = [retain](Connection& conn, absl::string_view data) {
      retain->OnData(conn, data);
    };
    return h;
  });
  ASSERT_TRUE(port.ok());
  const int fd = ConnectLoopback(*port);
  ASSERT_GE(fd, 0);
  size_t sent = 0;
  while (sent < message.size() && !record->done.HasBeenNotified()) {
    if (!SendAll(fd, message.substr(sent, kPiece)).ok()) break;
    sent += kPiece;
    ASSERT_TRUE(Eventually([&] {
      return reactor->Counters().bytes_read >= sent ||
             record->done.HasBeenNotified();
    }));
  }
  ASSERT_TRUE(record->done.WaitFor(std::chrono::seconds(20)));
  EXPECT_EQ(record->status().code(), absl::StatusCode::kResourceExhausted)
      << record->status();
  EXPECT_EQ(reactor->Counters().bytes_read, 11 * kPiece)
      << "closed once it retained more than the limit";
  EXPECT_EQ(mismatches.load(), 0) << "the retained bytes differ";
  EXPECT_GE(peak.load() - before, options.max_retained_input)
      << "the block never grew to the limit: the bound was not tested";
  EXPECT_LE(peak.load() - before,
            options.max_retained_input + options.read_buffer_size);
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return reactor->connection_count() == 0; }));
  EXPECT_EQ(InputBuffer::allocated(), before);
}

}  // namespace
}  // namespace baton
