// Tests for OutputQueue: byte chunks and file ranges arrive intact and in
// order, across partial writes.
#include "lib/internal/output_queue.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/util/test_client.h"

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
