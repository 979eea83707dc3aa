// Tests for Write / Close from threads that are not the connection's owner
// (lib/internal/foreign_requests.cc), through the public Reactor API on
// loopback with real sockets.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
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
using ::baton::testing::Notification;
using ::baton::testing::Pattern;
using ::baton::testing::ReadExact;
using ::baton::testing::ReadToEof;
using ::baton::testing::Registering;
using ::baton::testing::Server;
using ::baton::testing::StartServer;
using ::baton::testing::Threads;

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
  c.ready = c.fd >= 0 && opened->notification.WaitFor(std::chrono::seconds(10));
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

}  // namespace
}  // namespace baton
