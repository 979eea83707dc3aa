// Tests for OutputQueue: byte chunks and file ranges arrive intact and in
// order, across partial writes.
#include "lib/internal/output_queue.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "tests/util/test_client.h"

// Counts this thread's allocations while `counting` is set (the relay test).
namespace {
thread_local bool counting = false;
thread_local int allocations = 0;
}  // namespace

void* operator new(size_t size) {
  if (counting) ++allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace baton::internal {
namespace {

// Reads whatever is available on `fd` into `out`.
void DrainInto(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) return;
    out->append(buf, static_cast<size_t>(n));
  }
}

TEST(OutputQueueTest, BytesAndFileRangesKeepOrderAcrossPartialWrites) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  const int small = 4096;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));

  char path[] = "/tmp/baton_output_queue_XXXXXX";
  const int file = ::mkstemp(path);
  ASSERT_GE(file, 0);
  ::unlink(path);
  const std::string file_data = baton::testing::Pattern(300000, 7);
  ASSERT_EQ(::write(file, file_data.data(), file_data.size()),
            static_cast<ssize_t>(file_data.size()));

  OutputQueue q;
  std::string expected;
  for (int i = 0; i < 50; ++i) {
    const std::string chunk = baton::testing::Pattern(1000 + i * 37, i);
    q.Append(chunk);
    expected += chunk;
  }
  q.AppendFile(ScopedFd(::dup(file)), 1000, 200000);
  expected += file_data.substr(1000, 200000);
  q.Append("tail");
  expected += "tail";
  EXPECT_EQ(q.bytes(), expected.size());

  std::string received;
  size_t sent_total = 0;
  for (int rounds = 0; rounds < 100000 && !q.empty(); ++rounds) {
    size_t sent = 0;
    int error = 0;
    const auto result = q.Flush(sv[0], &sent, &error);
    ASSERT_NE(result, OutputQueue::FlushResult::kError) << error;
    sent_total += sent;
    DrainInto(sv[1], &received);
  }
  ASSERT_TRUE(q.empty());
  DrainInto(sv[1], &received);
  EXPECT_EQ(sent_total, expected.size());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_TRUE(received == expected) << "stream differs";
  ::close(file);
  ::close(sv[0]);
  ::close(sv[1]);
}

// Sends everything queued on `fd` (whose peer is drained into `received`).
void FlushAll(OutputQueue* q, int fd, int peer, std::string* received) {
  for (int rounds = 0; rounds < 100000 && !q->empty(); ++rounds) {
    size_t sent = 0;
    int error = 0;
    ASSERT_NE(q->Flush(fd, &sent, &error), OutputQueue::FlushResult::kError)
        << error;
    DrainInto(peer, received);
  }
  ASSERT_TRUE(q->empty());
  DrainInto(peer, received);
}

// A relay (Reactor::Write, a proxy) queues a message, sends it, and is
// recycled: after the first message, neither the chunk array nor the
// bytes' buffer is allocated again.
// A plaintext queue (a TLS connection's): TakeFront hands out byte chunks
// whole and a file range in blocks of at most `max`, in order, counting
// bytes() down; a range longer than its file ends with EIO after the bytes
// it had.
TEST(OutputQueueTest, TakeFrontReadsFileRangesInBlocks) {
  char path[] = "/tmp/baton_output_queue_XXXXXX";
  const int file = ::mkstemp(path);
  ASSERT_GE(file, 0);
  ::unlink(path);
  const std::string file_data = baton::testing::Pattern(50000, 3);
  ASSERT_EQ(::write(file, file_data.data(), file_data.size()),
            static_cast<ssize_t>(file_data.size()));

  OutputQueue q;
  q.Append("head");
  q.AppendFile(ScopedFd(::dup(file)), 100, 40000);
  q.Append("tail");
  q.AppendFile(ScopedFd(::dup(file)), 49000, 2000);  // 1000 past the end
  ASSERT_EQ(q.bytes(), 4u + 40000u + 4u + 2000u);

  std::string out;
  int error = 0;
  EXPECT_FALSE(q.front_is_file());
  EXPECT_EQ(q.TakeFront(16384, &out, &error), 4u);
  EXPECT_TRUE(q.front_is_file());
  size_t blocks = 0;
  while (q.front_is_file()) {
    const size_t before = out.size();
    ASSERT_GT(q.TakeFront(16384, &out, &error), 0u);
    ASSERT_LE(out.size() - before, 16384u);
    ++blocks;
  }
  EXPECT_EQ(blocks, 3u);  // 16384 + 16384 + 7232
  EXPECT_EQ(q.TakeFront(16384, &out, &error), 4u);
  EXPECT_EQ(out, "head" + file_data.substr(100, 40000) + "tail");
  EXPECT_EQ(q.bytes(), 2000u);

  out.clear();
  EXPECT_EQ(q.TakeFront(16384, &out, &error), 1000u);  // what there is
  EXPECT_EQ(error, 0);
  EXPECT_EQ(q.TakeFront(16384, &out, &error), 0u);
  EXPECT_EQ(error, EIO);
  EXPECT_EQ(out, file_data.substr(49000));
  ::close(file);
}

TEST(OutputQueueTest, RelayingMessagesAllocatesNothingOnceWarm) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  OutputQueue q;
  std::string expected;
  std::string received;
  std::vector<std::string> messages;
  for (int i = 0; i < 200; ++i) {
    messages.push_back(baton::testing::Pattern(64 + i % 900, i));
  }
  q.Append(std::string(1000, 'w'));  // warm up: the first one allocates
  expected += std::string(1000, 'w');
  FlushAll(&q, sv[0], sv[1], &received);
  for (int i = 0; i < 200; ++i) {
    counting = true;
    q.Append(messages[i]);
    size_t sent = 0;
    int error = 0;
    const auto result = q.Flush(sv[0], &sent, &error);
    if (i % 50 == 49) q.Clear();  // what RecycleOutputQueue does
    counting = false;
    ASSERT_EQ(result, OutputQueue::FlushResult::kDrained) << error;
    ASSERT_EQ(sent, messages[i].size());
    expected += messages[i];
    DrainInto(sv[1], &received);
  }
  EXPECT_EQ(allocations, 0);
  EXPECT_TRUE(received == expected) << "stream differs";
  ::close(sv[0]);
  ::close(sv[1]);
}

// A backlog of thousands of chunks (a slow reader) drains in order while
// more is appended, across the compaction of the sent ones.
TEST(OutputQueueTest, LongBacklogDrainsInOrderWhileAppending) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  const int small = 4096;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  OutputQueue q;
  std::string expected;
  std::string received;
  int next = 0;
  // Chunks of 20 KB (above the coalescing limit): one chunk each.
  auto append = [&](int count) {
    for (int i = 0; i < count; ++i, ++next) {
      const std::string chunk = baton::testing::Pattern(20000 + next % 7, next);
      q.Append(chunk);
      expected += chunk;
    }
  };
  append(3000);
  for (int rounds = 0; rounds < 1000000 && !q.empty(); ++rounds) {
    size_t sent = 0;
    int error = 0;
    ASSERT_NE(q.Flush(sv[0], &sent, &error), OutputQueue::FlushResult::kError)
        << error;
    DrainInto(sv[1], &received);
    if (rounds % 97 == 0 && next < 4000) append(5);
  }
  DrainInto(sv[1], &received);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected) << "stream differs";
  ::close(sv[0]);
  ::close(sv[1]);
}

// AppendSpace hands out room the caller fills in place (a TLS engine's
// ciphertext); TrimBack returns what was not filled. Bytes and count stay
// exact whether the room joins the last chunk or starts a new one, and a
// chunk trimmed to nothing is gone.
TEST(OutputQueueTest, AppendSpaceFilledInPlaceKeepsOrderAndCount) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  OutputQueue q;
  std::string expected;
  q.Append("head:");
  expected += "head:";
  char* room = q.AppendSpace(10);  // joins the small last chunk
  std::memcpy(room, "0123456789", 10);
  q.TrimBack(4);  // six were written
  expected += "012345";
  EXPECT_EQ(q.bytes(), expected.size());
  const std::string big(1 << 20, 'b');  // past the coalescing limit
  room = q.AppendSpace(big.size());
  std::memcpy(room, big.data(), big.size());
  expected += big;
  room = q.AppendSpace(100);
  q.TrimBack(100);  // nothing written: no empty chunk is left behind
  room = q.AppendSpace(5);
  std::memcpy(room, ":tail", 5);
  expected += ":tail";
  EXPECT_EQ(q.bytes(), expected.size());
  std::string got;
  for (int i = 0; i < 100000 && !q.empty(); ++i) {
    size_t sent = 0;
    int error = 0;
    ASSERT_NE(q.Flush(sv[0], &sent, &error), OutputQueue::FlushResult::kError)
        << error;
    DrainInto(sv[1], &got);
  }
  DrainInto(sv[1], &got);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(got, expected);
  // Trimmed to nothing on an empty queue: still empty and usable.
  q.AppendSpace(8);
  q.TrimBack(8);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(OutputQueueTest, ReportsPeerGone) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  ::close(sv[1]);
  OutputQueue q;
  q.Append("hello");
  size_t sent = 0;
  int error = 0;
  EXPECT_EQ(q.Flush(sv[0], &sent, &error), OutputQueue::FlushResult::kError);
  EXPECT_EQ(error, EPIPE);
  ::close(sv[0]);
}

}  // namespace
}  // namespace baton::internal
